// The web console's static files at `/` (built by `npm run build:console`).
// (Seam: filled in by the console work of issue #7.)
import type { HttpRoute } from "./routes.js";

export function consoleRoutes(_dir: string): HttpRoute[] {
  return [];
}
