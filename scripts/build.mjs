#!/usr/bin/env node
// `nest build`, skipped when dist/ is already newer than everything it is built from, so
// `npm start`, `npm test` and `npm run integrity` do not spend half a minute recompiling an
// unchanged tree. `--force` always builds. The check compares modification times with a stamp
// written after the last successful build (taken at its start, so a file saved during a build
// is rebuilt next time); directories count too, so a deleted or renamed source is noticed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'nest-cli.json', 'package.json', 'package-lock.json'];

/** The newest modification time under `path`, or the path of the first input newer than `than`. */
function newerThan(path, than) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return undefined;
  if (stat.mtimeMs > than) return path;
  if (!stat.isDirectory()) return undefined;
  for (const entry of readdirSync(path)) {
    const found = newerThan(join(path, entry), than);
    if (found) return found;
  }
  return undefined;
}

const force = process.argv.includes('--force');
const built = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs;
const changed = built === undefined ? 'no build yet' : inputs.map((input) => newerThan(join(root, input), built)).find(Boolean);
if (!force && !changed && existsSync(join(root, 'dist', 'main.js'))) process.exit(0);

const startedAt = new Date();
console.error(`Building dist/ with nest build (${force ? '--force' : `${changed} changed`})…`);
const nest = spawnSync(process.execPath, [join(root, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build'], {
  cwd: root,
  stdio: 'inherit',
});
if (nest.status !== 0) process.exit(nest.status ?? 1);
mkdirSync(dirname(stamp), { recursive: true });
writeFileSync(stamp, `${startedAt.toISOString()}\n`);
utimesSync(stamp, startedAt, startedAt);
console.error(`Built in ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)} s`);
