// The cold tier as plain files under a directory: the embedded default
// (./data/archive). A key is a relative path; writes land atomically.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, open, readdir, rename, rmdir, unlink } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { ColdObjectMissing, readBack, type ColdObjectInfo, type ColdStore } from "../cold-store.js";

const keyPattern = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
/** A write in progress: `<path>.tmp-<random>`, renamed over the path when complete. */
const tmpPattern = /\.tmp-[0-9a-f]+$/;

export class DirectoryColdStore implements ColdStore {
  readonly root: string;
  readonly describe: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.describe = `directory (${this.root})`;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const path = this.pathOf(key);
    const tmp = `${path}.tmp-${randomBytes(6).toString("hex")}`;
    // A concurrent delete may remove the (then empty) directory between mkdir and open.
    for (let attempt = 1; ; attempt++) {
      await mkdir(dirname(path), { recursive: true });
      try {
        await writeDurably(tmp, body);
        break;
      } catch (err) {
        if (code(err) !== "ENOENT" || attempt === 3) throw err;
      }
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await syncDirectory(dirname(path));
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    let handle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      if (isAbsent(err)) throw new ColdObjectMissing(key);
      throw err;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new ColdObjectMissing(key); // a directory: other keys live below this one
    }
    return handle.createReadStream();
  }

  verify(key: string): Promise<ColdObjectInfo | undefined> {
    return readBack(this, key);
  }

  async list(prefix: string): Promise<string[]> {
    if (prefix.split("/").some((segment) => segment === "..")) throw new Error(`bad cold prefix ${JSON.stringify(prefix)}`);
    // Only the directory the prefix names fully needs walking.
    const base = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const keys: string[] = [];
    await this.walk(base, keys);
    return keys.filter((key) => key.startsWith(prefix)).sort();
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) {
      const path = this.pathOf(key);
      try {
        await unlink(path);
      } catch (err) {
        if (isAbsent(err)) continue;
        throw err;
      }
      await this.pruneEmptyDirectories(dirname(path));
    }
  }

  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root, constants.R_OK | constants.W_OK);
  }

  /** The file of a key; throws on a key that is not a plain relative path. */
  private pathOf(key: string): string {
    if (!keyPattern.test(key) || key.split("/").some((s) => s === "." || s === "..") || tmpPattern.test(key)) {
      throw new Error(`bad cold object key ${JSON.stringify(key)}`);
    }
    return join(this.root, ...key.split("/"));
  }

  /** Appends the keys of every file under `dir` (a key prefix ending in "/", or ""). */
  private async walk(dir: string, keys: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(this.root, ...dir.split("/")), { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.isDirectory()) await this.walk(`${dir}${entry.name}/`, keys);
      else if (entry.isFile() && !tmpPattern.test(entry.name)) keys.push(`${dir}${entry.name}`);
    }
  }

  /** Removes directories left empty by a delete, up to (not including) the root. */
  private async pruneEmptyDirectories(dir: string): Promise<void> {
    while (dir.startsWith(this.root + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      dir = dirname(dir);
    }
  }
}

/** Writes and fsyncs a new file, so the rename that follows never exposes a partial one. */
async function writeDurably(path: string, body: Buffer): Promise<void> {
  const handle = await open(path, "wx");
  try {
    await handle.writeFile(body);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(path).catch(() => {});
    throw err;
  }
  await handle.close();
}

/** Makes a rename in `dir` durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isAbsent(err: unknown): boolean {
  const c = code(err);
  return c === "ENOENT" || c === "ENOTDIR" || c === "EISDIR";
}
