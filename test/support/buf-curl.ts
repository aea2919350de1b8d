// buf curl, our grpcurl stand-in: a real gRPC client that knows the API only through reflection.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const buf = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

export async function bufCurl(...args: string[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    timeout: 20_000,
  });
  return stdout.trim().split("\n");
}
