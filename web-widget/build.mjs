// Builds src/ into one minified file: ../chat/static/widget.js (served as GET /widget.js).
// `node build.mjs --outfile PATH` writes elsewhere (the build check compares the two).
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(resolve(here, "package.json"), "utf8"));
const at = process.argv.indexOf("--outfile");
const outfile = at > 0 ? resolve(process.argv[at + 1]) : resolve(here, "../chat/static/widget.js");

await build({
  entryPoints: [resolve(here, "src/main.tsx")],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  define: { __VERSION__: JSON.stringify(pkg.version) },
  legalComments: "none",
  banner: {
    js:
      `/*! Parley web widget ${pkg.version} (Apache-2.0). Bundles Preact (MIT, Jason Miller) and ` +
      "socket.io-client, engine.io-client, socket.io-parser, engine.io-parser, " +
      "@socket.io/component-emitter (MIT, Guillermo Rauch and Socket.IO contributors). */",
  },
  sourcemap: false,
  logLevel: "warning",
});
console.log(`built ${outfile}`);
