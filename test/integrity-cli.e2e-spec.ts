import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** `npm run integrity`'s command line, run as the built command (dist/integrity/main.js). */
const CLI = join(import.meta.dirname, '..', 'dist', 'integrity', 'main.js');

function integrity(...args: string[]) {
  // No MONGODB_URI: a run that reached the database would start an engine; these must not.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 20_000 });
}

describe('npm run integrity -- --help (bug: it printed "Unknown option --help")', () => {
  it.each(['--help', '-h'])('%s prints what the command does, its options and exit codes, and exits 0', (flag) => {
    const result = integrity(flag);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Usage: npm run integrity -- \[--fix\] \[--json\]/);
    for (const text of ['dangling', 'repeated', '--fix', '--json', '--help', 'MONGODB_URI', 'DATA_DIR', 'Exit status']) {
      expect(result.stdout).toContain(text);
    }
  });

  it('refuses an unknown option with exit code 2, naming it and pointing at --help', () => {
    const result = integrity('--fxi');
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/'--fxi'/);
    expect(result.stderr).toContain('--help');
  });
});
