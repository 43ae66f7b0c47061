// Build the dashboard: dashboard/src + uPlot from node_modules -> dashboard/dist.
// No network: everything comes from this repository and node_modules (package-lock pinned).
// Run: node dashboard/build.mjs
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");
const require = createRequire(join(here, "..", "package.json"));

function fail(msg) {
  console.error(`dashboard build: ${msg}`);
  process.exit(1);
}

let uplotDir;
try {
  uplotDir = join(dirname(require.resolve("uplot/package.json")), "dist");
} catch {
  fail("uplot is not installed: run `npm ci` at the repository root");
}
const vendor = [
  [join(uplotDir, "uPlot.iife.min.js"), "uPlot.iife.min.js"],
  [join(uplotDir, "uPlot.min.css"), "uPlot.min.css"],
];
for (const [from] of vendor) if (!existsSync(from)) fail(`missing ${from}`);

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
cpSync(src, dist, { recursive: true });
for (const [from, name] of vendor) cpSync(from, join(dist, "vendor", name));
const uplotVersion = JSON.parse(readFileSync(require.resolve("uplot/package.json"), "utf8")).version;
cpSync(join(dirname(uplotDir), "LICENSE"), join(dist, "vendor", "uPlot.LICENSE"));

// The page must load nothing from the internet: refuse absolute URLs in src/href.
const html = readFileSync(join(dist, "index.html"), "utf8");
const external = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]).filter((u) => /^(?:[a-z]+:)?\/\//i.test(u));
if (external.length) fail(`index.html loads external resources: ${external.join(", ")}`);
if (existsSync(join(dist, "config.json"))) fail("config.json is served/deployed per environment; do not put one in dashboard/src");

const files = [];
(function walk(dir, rel) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) walk(join(dir, e.name), rel + e.name + "/");
    else files.push(rel + e.name);
  }
})(dist, "");
const digest = createHash("sha256");
for (const f of files.sort()) digest.update(f).update(readFileSync(join(dist, f)));
writeFileSync(join(dist, "build.json"), JSON.stringify({ uplot: uplotVersion, files: files.sort(), sha256: digest.digest("hex") }, null, 2) + "\n");
console.log(`dashboard build: ${files.length} files -> ${dist} (uPlot ${uplotVersion})`);
