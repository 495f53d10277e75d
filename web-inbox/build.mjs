// Builds the inbox into chat/static/inbox/ (or the directory given as the first argument):
// index.html, assets/inbox.js and assets/inbox.css. The output is committed, so running
// Parley needs no npm; tests/test_inbox_build.py rebuilds and compares.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "..", "chat", "static", "inbox"));

rmSync(join(out, "assets"), { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
await build({
  entryPoints: { inbox: join(here, "src", "main.tsx") },
  outdir: join(out, "assets"),
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(out, "index.html"));
