/**
 * Polls `check` until it holds or `timeoutMs` has passed, and answers whether it held. For what
 * happens in its own time (a service becoming ready, a killed process exiting, a database coming
 * back, the sweeper's removal, PostgreSQL publishing its statistics), never to time anything: the
 * bound only ends a wait that would otherwise never end. A `check` that throws ends the wait with
 * its error.
 */
export async function eventually(check: () => boolean | Promise<boolean>, { timeoutMs = 20_000, everyMs = 100 } = {}): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
