import { readFileSync } from "node:fs";

/** The version of an npm package installed here (not every package exports its package.json). */
export function installedVersion(pkg) {
  return JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;
}
