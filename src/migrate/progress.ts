/** Where the converter says how far it has got. */
export interface Progress {
  update(stage: string, done?: number, total?: number): void;
  /** Clears the line, so the report starts on a clean one. */
  finish(): void;
}

export const silentProgress: Progress = { update: () => {}, finish: () => {} };

/**
 * One line, rewritten in place, on a terminal; nothing at all otherwise, so logs and pipes get
 * only the report. Redrawn at most ten times a second: the writes are not what should be slow.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  let last = 0;
  let shown = false;
  return {
    update(stage, done, total) {
      const now = Date.now();
      if (now - last < 100 && done !== total) return;
      last = now;
      shown = true;
      if (done === undefined) return void stream.write(`\r\x1b[2K${stage}…`);
      const count = total === undefined ? done.toLocaleString('en') : `${done.toLocaleString('en')}/${total.toLocaleString('en')}`;
      const percent = total ? ` (${Math.floor((done / total) * 100)}%)` : '';
      stream.write(`\r\x1b[2K${stage}: ${count}${percent}`);
    },
    finish() {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}
