// JSON answers and errors of the plain-HTTP API, with Connect's HTTP status for each code.
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import type { HttpResponse } from "./routes.js";

/** A malformed HTTP request (query, body): 400, or 413 for an oversize body. */
export class BadRequest extends Error {}
export class BodyTooLarge extends BadRequest {}

export function sendJson(res: HttpResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("content-type", "application/json; charset=utf-8");
  res.setHeader("content-length", Buffer.byteLength(text));
  res.end(text);
}

/** `{"error": {"code": "not_found", "message": …}}`. */
export function sendError(res: HttpResponse, err: unknown): void {
  const tooLarge = err instanceof BodyTooLarge;
  const connectError = err instanceof BadRequest ? new ConnectError(err.message, tooLarge ? Code.ResourceExhausted : Code.InvalidArgument) : ConnectError.from(err);
  sendJson(res, tooLarge ? 413 : codeToHttpStatus(connectError.code), errorBody(connectError));
}

export function errorBody(err: unknown): { error: { code: string; message: string } } {
  const connectError = ConnectError.from(err);
  return { error: { code: codeToString(connectError.code), message: connectError.rawMessage } };
}
