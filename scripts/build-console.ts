// Builds the web console (web/console/) into the directory the server serves
// it from (EVENTIDE_CONSOLE_DIR, default dist/console): index.html plus one
// minified app-<hash>.js and app-<hash>.css. The content hash in the names lets
// browsers cache the bundle for good; index.html itself is served no-cache.
//   npm run build:console        (npm start runs it first)
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";
import { consoleDir } from "../server/config.js";

const source = fileURLToPath(new URL("../web/console/", import.meta.url));

export interface BuiltConsole {
  dir: string;
  /** File names in `dir`: index.html, app-<hash>.js, app-<hash>.css. */
  files: string[];
  bytes: number;
}

export async function buildConsole(outDir: string): Promise<BuiltConsole> {
  const dir = resolve(outDir);
  // Old bundles go: the served directory holds exactly one build.
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(source, "app.ts") },
    outdir: dir,
    entryNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    // BigInt (int64 seqs) and fetch streams: every current browser.
    target: ["chrome100", "firefox100", "safari15"],
    metafile: true,
    logLevel: "silent",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith(".js"));
  const css = outputs.find((f) => f.endsWith(".css"));
  if (!js || !css) throw new Error(`esbuild wrote ${outputs.join(", ")}: expected one .js and one .css`);
  const html = replaceOnce(replaceOnce(await readFile(join(source, "index.html"), "utf8"), `href="app.css"`, `href="${css}"`), `src="app.js"`, `src="${js}"`);
  await writeFile(join(dir, "index.html"), html);
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, html.length);
  return { dir, files: ["index.html", js, css], bytes };
}

function replaceOnce(text: string, from: string, to: string): string {
  if (text.split(from).length !== 2) throw new Error(`web/console/index.html must contain ${from} exactly once`);
  return text.replace(from, to);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const built = await buildConsole(consoleDir());
  process.stdout.write(`console built into ${built.dir}: ${built.files.join(", ")} (${(built.bytes / 1024).toFixed(0)} KiB)\n`);
}
