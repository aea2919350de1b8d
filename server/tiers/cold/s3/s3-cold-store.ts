// The cold tier on S3 or any S3-compatible server (MinIO, SeaweedFS, Ceph RGW,
// s3rver in tests), path-style or virtual-hosted.
import type { Readable } from "node:stream";
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { ColdObjectMissing, readBack, type ColdObjectInfo, type ColdStore } from "../cold-store.js";

export interface S3ColdStoreOptions {
  /** Empty or absent: AWS itself. */
  endpoint?: string;
  bucket: string;
  region: string;
  /** Both or neither; neither = the SDK's default credential chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  /** The SDK's attempts per request (its default is 3). */
  maxAttempts?: number;
}

/** Bodies above this go up as a multipart upload of parts this size. */
export const multipartPartBytes = 8 * 1024 * 1024;
/** DeleteObjects takes at most this many keys per request. */
const deleteBatch = 1000;

export class S3ColdStore implements ColdStore {
  readonly describe: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly region: string;

  constructor(opts: S3ColdStoreOptions) {
    const endpoint = opts.endpoint || undefined;
    const config: S3ClientConfig = {
      region: opts.region,
      endpoint,
      forcePathStyle: opts.forcePathStyle,
      maxAttempts: opts.maxAttempts,
    };
    if (opts.accessKeyId && opts.secretAccessKey) {
      config.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey };
    }
    if (endpoint) {
      // Other servers store the SDK's default checksum framing of a streamed
      // body inside the object: silent corruption. Checksum only where S3 requires it.
      config.requestChecksumCalculation = "WHEN_REQUIRED";
      config.responseChecksumValidation = "WHEN_REQUIRED";
    }
    this.client = new S3Client(config);
    this.bucket = opts.bucket;
    this.region = opts.region;
    this.describe = `s3 (${endpoint ?? `aws ${opts.region}`}, ${opts.bucket})`;
  }

  /** Creates the bucket unless it exists already. */
  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is the default location and refuses to be named.
          CreateBucketConfiguration:
            this.region === "us-east-1" ? undefined : { LocationConstraint: this.region as BucketLocationConstraint },
        }),
      );
    } catch (err) {
      if (errorName(err) !== "BucketAlreadyOwnedByYou") throw err; // another process created it first
    }
  }

  async put(key: string, body: Buffer): Promise<void> {
    if (body.length <= multipartPartBytes) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }));
      return;
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body },
      partSize: multipartPartBytes,
      queueSize: 4,
      leavePartsOnError: false,
    });
    await upload.done();
  }

  async get(key: string): Promise<Readable> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!res.Body) throw new Error(`GetObject ${key} returned no body`);
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err) && errorName(err) !== "NoSuchBucket") throw new ColdObjectMissing(key);
      throw err;
    }
  }

  verify(key: string): Promise<ColdObjectInfo | undefined> {
    return readBack(this, key);
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += deleteBatch) {
      const batch = keys.slice(i, i + deleteBatch);
      const res = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new Error(`S3 delete failed for ${failed.length} of ${batch.length} keys, e.g. ${first.Key}: ${first.Code} ${first.Message}`);
      }
    }
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  /** Frees the client's sockets. */
  close(): void {
    this.client.destroy();
  }
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : "";
}

/** A 404: HEAD answers carry no error code, so the status decides. */
function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  if (name === "NoSuchKey" || name === "NotFound" || name === "NoSuchBucket") return true;
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status === 404;
}
