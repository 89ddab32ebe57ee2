// What an app ships: esbuild's minified bundle of everything an entry point
// exports, and its gzipped size. `npm run size` and `npm run bench` measure
// @sluice/sdk and @growthbook/growthbook with it, built the same way; the
// tests load the main bundle built by it.
import { build } from "esbuild";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = fileURLToPath(new URL(".", import.meta.url));

/** The minified ES module an app importing everything from `specifier` gets (resolved from bench/). */
export async function minifiedBundle(specifier) {
  const out = await build({
    stdin: { contents: `export * from ${JSON.stringify(specifier)};`, resolveDir: here, loader: "js" },
    bundle: true, minify: true, format: "esm", platform: "neutral", mainFields: ["module", "main"], write: false, logLevel: "silent",
  });
  return out.outputFiles[0].contents;
}

async function sizes(specifier) {
  const code = await minifiedBundle(specifier);
  return { minified: code.length, gzipped: gzipSync(code).length };
}

/** Prints the bundle sizes of both SDKs (and of our diagnostics entry, which apps do not import); returns ours and theirs. */
export async function reportBundles() {
  const gbVersion = createRequire(import.meta.url)("@growthbook/growthbook/package.json").version;
  const ours = await sizes("../dist/index.js");
  const theirs = await sizes("@growthbook/growthbook");
  const diagnostics = await sizes("../dist/diagnostics.js");
  console.log("bundle (esbuild --bundle --minify, then gzip)");
  console.log(`  @sluice/sdk                   ${ours.minified} B minified, ${ours.gzipped} B gzipped`);
  console.log(`  @growthbook/growthbook ${gbVersion.padEnd(6)} ${theirs.minified} B minified, ${theirs.gzipped} B gzipped`);
  console.log(`  (@sluice/sdk/diagnostics      ${diagnostics.minified} B minified, ${diagnostics.gzipped} B gzipped, for tools, not in the app bundle)`);
  return { ours, theirs };
}

/** The bundle ratio and whether it meets the 1/3 target. */
export function bundleRatio({ ours, theirs }) {
  return { ratio: ours.gzipped / theirs.gzipped, met: ours.gzipped * 3 <= theirs.gzipped };
}
