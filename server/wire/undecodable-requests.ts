// A request body that is not protobuf (undecodable bytes, a truncated varint, nesting past
// the decoder's depth limit, invalid UTF-8 in a string) is the caller's malformed input:
// INVALID_ARGUMENT, as DESIGN.md asks. connect-es answers it INTERNAL "parse binary: …", and
// for a unary call it does so before any interceptor runs (it decodes the request first, then
// calls the interceptors with the message; a server stream decodes it inside them). So:
//   - server streams: the error interceptor maps it (toConnectError), like any other error;
//   - unary calls: each unary route's handler is wrapped, and its answer, already written in
//     the call's protocol, gets the code and message rewritten: the gRPC trailers, the gRPC-Web
//     trailer frame, or the Connect error body (HTTP 500 → 400).
// Nothing in the call ran, so nothing was written; the rest of the answer stays Connect's.
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { encodeEnvelope, type UniversalHandler, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

const parseFailure = "parse binary: ";

/** Connect's INTERNAL for a request it could not decode, as the INVALID_ARGUMENT it is; undefined for any other error. */
export function undecodableRequest(err: ConnectError): ConnectError | undefined {
  if (err.code !== Code.Internal || !err.rawMessage.startsWith(parseFailure)) return undefined;
  const why = err.rawMessage.slice(parseFailure.length);
  // The platform's fatal TextDecoder says only "The encoded data was not valid for encoding utf-8".
  const said = /not valid for encoding utf-8/i.test(why) ? "invalid UTF-8 in a string field" : why;
  return new ConnectError(`the request is not valid protobuf: ${said}`, Code.InvalidArgument);
}

/** Wraps the router's unary handlers (call once all services are registered, before the router serves). */
export function refuseUndecodableRequests(router: ConnectRouter): void {
  router.handlers.forEach((handler, i) => {
    if (handler.method.methodKind === "unary") router.handlers[i] = answeringUndecodable(handler);
  });
}

function answeringUndecodable(handler: UniversalHandler): UniversalHandler {
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const res = await handler(req);
    const contentType = req.header.get("content-type") ?? "";
    if (contentType.startsWith("application/grpc-web")) return grpcWebAnswer(res);
    if (contentType.startsWith("application/grpc")) return grpcAnswer(res);
    return connectAnswer(res);
  };
  // The protocol names, method, path and content types the adapters route by.
  return Object.assign(wrapped, handler);
}

/** gRPC: the status is in the trailers, set by the time the handler resolves when nothing ran. */
function grpcAnswer(res: UniversalServerResponse): UniversalServerResponse {
  if (res.trailer?.get("grpc-status") === String(Code.Internal)) rewriteStatus(res.trailer);
  return res;
}

/** gRPC-Web: the status is a trailer frame in the body; when nothing ran, it is the body's first chunk. */
async function grpcWebAnswer(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (!res.body) return res;
  const it = res.body[Symbol.asyncIterator]();
  // Connect waited for the first chunk before it answered: this does not wait.
  let first: IteratorResult<Uint8Array> | undefined = await it.next();
  const chunk = first.value as Uint8Array | undefined;
  if (!first.done && chunk && chunk.length >= 5 && chunk[0] === trailerFlag) {
    const trailer = trailerParse(chunk.subarray(5));
    if (trailer.get("grpc-status") === String(Code.Internal) && rewriteStatus(trailer)) {
      first = { done: false, value: encodeEnvelope(trailerFlag, trailerSerialize(trailer)) };
    }
  }
  return {
    ...res,
    body: {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          if (!first) return it.next();
          const taken = first;
          first = undefined;
          return Promise.resolve(taken);
        },
        return: (value?: unknown) => it.return?.(value) ?? Promise.resolve({ done: true as const, value: undefined }),
        throw: (e?: unknown) => it.throw?.(e) ?? Promise.reject(e),
      }),
    },
  };
}

function rewriteStatus(trailer: Headers): boolean {
  const err = findTrailerError(trailer);
  const mapped = err && undecodableRequest(err);
  if (!mapped) return false;
  trailer.set("grpc-status", String(mapped.code));
  trailer.set("grpc-message", encodeURIComponent(mapped.rawMessage));
  return true;
}

/** Connect unary: an error is an HTTP status with a JSON body of one chunk. */
async function connectAnswer(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (res.status !== 500 || !res.body || res.header?.has("content-encoding")) return res;
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let mapped: ConnectError | undefined;
  try {
    mapped = undecodableRequest(errorFromJsonBytes(bytes, undefined, new ConnectError("not a Connect error body")));
  } catch {
    mapped = undefined;
  }
  const answer = mapped ? errorToJsonBytes(mapped, {}) : bytes;
  const header = new Headers(res.header);
  header.set("content-length", String(answer.byteLength));
  return { ...res, status: mapped ? codeToHttpStatus(mapped.code) : res.status, header, body: singleChunk(answer) };
}

async function* singleChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
