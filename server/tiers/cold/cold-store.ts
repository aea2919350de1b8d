// The cold tier: archived ranges of a thread's log as immutable objects.
// Implementations: s3/ (any S3-compatible server) and directory/ (embedded).
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";

export interface ColdObjectInfo {
  key: string;
  bytes: number;
  /** Hex sha256 of the object's bytes. */
  sha256: string;
}

export interface ColdStore {
  /** Writes the object (multipart for large bodies on S3). Overwrites. */
  put(key: string, body: Buffer): Promise<void>;
  /** Streams the object's bytes; throws ColdObjectMissing when absent. */
  get(key: string): Promise<Readable>;
  /** Reads the object back for its size and sha256 (the archiver's verification); undefined when absent. */
  verify(key: string): Promise<ColdObjectInfo | undefined>;
  /** Every key under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deletes the keys; absent keys are fine. */
  delete(keys: string[]): Promise<void>;
  /** Throws when the store is unreachable. */
  ping(): Promise<void>;
  /** For logs: "s3 (endpoint, bucket)" or "directory (path)". */
  readonly describe: string;
}

/** The object is not in the store: an archive row that points nowhere is lost data. */
export class ColdObjectMissing extends Error {
  override name = "ColdObjectMissing";
  constructor(readonly key: string) {
    super(`cold object ${JSON.stringify(key)} does not exist`);
  }
}

/** Size and sha256 of a stream's bytes, read to the end without holding them. */
export async function measure(key: string, body: AsyncIterable<Buffer>): Promise<ColdObjectInfo> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { key, bytes, sha256: hash.digest("hex") };
}

/** verify() for any store: read the object back and measure it; undefined when it is absent. */
export async function readBack(store: Pick<ColdStore, "get">, key: string): Promise<ColdObjectInfo | undefined> {
  try {
    return await measure(key, (await store.get(key)) as AsyncIterable<Buffer>);
  } catch (err) {
    if (err instanceof ColdObjectMissing) return undefined;
    throw err;
  }
}
