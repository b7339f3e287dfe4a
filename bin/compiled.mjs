// Where the compiled CLI is, when it can be used: the package ships dist/ only (no src/), so
// there it always is; in a checkout it is used only while no source is newer than the last
// build (npm run build), so an edited source never runs as stale JavaScript.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Sources the build compiles or copies (scripts/build.mjs). */
export const SOURCE_DIRS = ['src', 'machines'];
/** Written last by the build: its time is the build's. */
export const STAMP = 'dist/.built';

function newestBelow(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestBelow(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Whether root's dist/ is a complete build of its current sources. */
export function isBuildFresh(root) {
  const stamp = join(root, STAMP);
  if (!existsSync(stamp)) return false;
  const sources = SOURCE_DIRS.map((d) => join(root, d)).filter((d) => existsSync(d));
  if (sources.length === 0) return true; // an installed package: nothing to be newer
  const built = statSync(stamp).mtimeMs;
  return sources.every((d) => newestBelow(d) <= built);
}
