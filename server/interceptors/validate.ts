// Enforces the protovalidate constraints declared in proto/ on every request.
// (Seam for the validation work: filled in by issue #6.)
import type { Interceptor } from "@connectrpc/connect";

export function validateRequests(): Interceptor {
  return (next) => (req) => next(req);
}
