// Errors that no retry can cure: a tail or an agent feed ends with them.
import { Code, ConnectError } from "@connectrpc/connect";

const terminal = new Set([Code.NotFound, Code.PermissionDenied, Code.Unauthenticated, Code.InvalidArgument, Code.OutOfRange, Code.Unimplemented]);

export function isTerminal(err: unknown): boolean {
  return terminal.has(ConnectError.from(err).code);
}
