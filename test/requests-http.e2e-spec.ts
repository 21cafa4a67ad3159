import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runService, type ServiceProcess } from './support/processes.js';

/** requests.http, run as a user runs it: httpyac against the service started as a real process. */

const ROOT = join(import.meta.dirname, '..');
const HTTPYAC = join(ROOT, 'node_modules', 'httpyac', 'bin', 'httpyac.js');
const BASE_LINE = /^@base = http:\/\/127\.0\.0\.1:3000\/api$/m;

interface HttpyacReport {
  summary: { totalRequests: number; successRequests: number; totalTests: number; successTests: number };
  requests: Array<{
    title?: string;
    response?: { statusCode: number };
    testResults?: Array<{ message: string; status: string; error?: { displayMessage?: string } }>;
  }>;
}

/** `httpyac send requests.http --all --json` in `dir`, with its JSON report. */
function httpyac(dir: string): Promise<{ code: number | null; report: HttpyacReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HTTPYAC, 'send', 'requests.http', '--all', '--json'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        resolve({ code, report: JSON.parse(stdout) as HttpyacReport, stderr });
      } catch {
        reject(new Error(`httpyac exited ${code} without a JSON report:\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** What failed, readably: the request's title, its status and the failing check's message. */
function failures(report: HttpyacReport): string[] {
  return report.requests.flatMap((request) =>
    (request.testResults ?? [])
      .filter((result) => result.status !== 'SUCCESS')
      .map(
        (result) =>
          `${request.title} (${request.response?.statusCode ?? 'no answer'}): ${result.message} ${result.error?.displayMessage ?? ''}`,
      ),
  );
}

describe('requests.http (bug: httpyac ran 5 of its 11 requests, and a second run got 409s)', () => {
  let service: ServiceProcess;
  let dir: string;
  let requestCount: number;

  beforeAll(async () => {
    const source = readFileSync(join(ROOT, 'requests.http'), 'utf8');
    expect(source).toMatch(BASE_LINE);
    requestCount = source.match(/^###/gm)?.length ?? 0;
    // The file as a user has it, pointed at this test's service instead of port 3000.
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'refmany-requests-'));
    writeFileSync(join(dir, 'requests.http'), source.replace(BASE_LINE, `@base = http://127.0.0.1:${port}/api`));
    service = runService({ MONGODB_URI: process.env.MONGODB_URI! }, port);
    await service.waitForLine(/"msg":"Listening on /, 60_000);
  }, 90_000);

  afterAll(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs every request with httpyac, each passing the checks the file makes of its answer', async () => {
    expect(requestCount).toBe(11);
    const { code, report, stderr } = await httpyac(dir);
    expect(failures(report)).toEqual([]);
    expect(report.summary.totalRequests).toBe(requestCount);
    expect(report.summary.successRequests).toBe(requestCount);
    // Every request checks something, and every check passed.
    expect(report.requests.every((request) => (request.testResults ?? []).length > 0)).toBe(true);
    expect(report.summary.successTests).toBe(report.summary.totalTests);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  }, 60_000);

  it('runs again on the same database with the same result', async () => {
    const { code, report } = await httpyac(dir);
    expect(failures(report)).toEqual([]);
    expect(report.summary.successRequests).toBe(requestCount);
    expect(code).toBe(0);
  }, 60_000);
});
