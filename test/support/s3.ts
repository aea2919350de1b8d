// An S3 server for tests: s3rver in-process on a free loopback port, its data
// in a temp directory that goes when the server stops.
import crypto from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { S3ColdStore } from "../../server/tiers/cold/s3/s3-cold-store.js";

// s3rver signs ListObjectsV2 continuation tokens with single DES, which
// OpenSSL 3 only has in its legacy provider: listing past 1,000 keys would
// fail with ERR_OSSL_EVP_UNSUPPORTED. Triple DES with the key repeated thrice
// is the same cipher and is in the default provider.
const { createCipheriv, createDecipheriv } = crypto;
const tripled = (key: crypto.CipherKey) => Buffer.concat([key, key, key] as Buffer[]);
crypto.createCipheriv = ((algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, options?: never) =>
  algorithm === "des" ? createCipheriv("des-ede3-cbc", tripled(key), iv) : createCipheriv(algorithm, key, iv, options)) as typeof createCipheriv;
crypto.createDecipheriv = ((algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null, options?: never) =>
  algorithm === "des" ? createDecipheriv("des-ede3-cbc", tripled(key), iv) : createDecipheriv(algorithm, key, iv, options)) as typeof createDecipheriv;

export const s3Credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** A store on the bucket, which it has created. */
  store: S3ColdStore;
  stop(): Promise<void>;
}

export async function startS3(bucket = "eventide-test"): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), "eventide-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: !process.env.S3RVER_LOGS, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const store = new S3ColdStore({ endpoint, bucket, region: "us-east-1", forcePathStyle: true, ...s3Credentials });
  await store.ensureBucket();
  return {
    endpoint,
    bucket,
    store,
    async stop() {
      store.close();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
