// How the server reads JSON requests (Connect JSON, gRPC and gRPC-Web with +json):
// strictly. Connect's defaults are lenient in ways that change what is stored.
import type { JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { protoKeyInJson, protoKeyRefused } from "./proto-keys.js";

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

export const invalidUtf8 = "the request body is not valid UTF-8";

/** UTF-8 text, or INVALID_ARGUMENT: a lenient decoder would store U+FFFD in place of the bad bytes. */
export function strictUtf8(bytes: Uint8Array): string {
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    throw new ConnectError(invalidUtf8, Code.InvalidArgument);
  }
}

/** The router's `jsonOptions`. */
export const jsonOptions: Partial<JsonReadOptions & JsonWriteOptions> & { textDecoder: { decode(bytes?: Uint8Array): string } } = {
  // Connect ignores unknown JSON fields, and with them unknown enum names, which then quietly
  // become the default (a misspelt multitask_strategy ran as ENQUEUE): protobuf's own default
  // refuses both, INVALID_ARGUMENT naming the field.
  ignoreUnknownFields: false,
  // Connect decodes the body with this decoder (its createJsonSerialization option): a parse
  // error it throws answers as it is.
  textDecoder: { decode: (bytes) => checkedJson(bytes ?? new Uint8Array(0)) },
};

/** The body as text, refused when it is not UTF-8 or holds a "__proto__" key (see proto-keys.ts). */
function checkedJson(bytes: Uint8Array): string {
  const text = strictUtf8(bytes);
  const path = protoKeyInJson(text);
  if (path !== undefined) throw protoKeyRefused(path);
  return text;
}
