/**
 * Upload progress on stderr (never stdout): on a terminal one line redrawn in place at most
 * 10 times a second; elsewhere (`--progress` into a pipe or a log) a plain line at most once
 * a second. Always a last line when the transfer ends.
 */
import { formatBytes } from './format.ts';

export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  update(sentBytes: number, totalBytes?: number): void;
  done(): void;
}

export function createProgress(sink: ProgressSink, label: string, now: () => number = Date.now): Progress {
  const tty = sink.isTTY === true;
  const every = tty ? 100 : 1000;
  const start = now();
  let last = -Infinity;
  let sent = 0;
  let total: number | undefined;
  let shown = false;
  let drawnAt = -1;

  const line = (): string => {
    const secs = Math.max((now() - start) / 1000, 0.001);
    const rate = `${formatBytes(Math.round(sent / secs))}/s`;
    if (total === undefined || total === 0) return `${label} ${formatBytes(sent)}  ${rate}`;
    const ratio = Math.min(1, sent / total);
    const width = 24;
    const filled = Math.round(ratio * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    return `${label} ${bar} ${(ratio * 100).toFixed(0).padStart(3)}%  ${formatBytes(sent)} / ${formatBytes(total)}  ${rate}`;
  };
  const draw = (final: boolean): void => {
    shown = true;
    drawnAt = sent;
    if (tty) sink.write(`\r${line()}\x1b[K${final ? '\n' : ''}`);
    else sink.write(`${line()}\n`);
  };

  return {
    update(s, t) {
      sent = s;
      total = t;
      const at = now();
      if (at - last < every) return;
      last = at;
      draw(false);
    },
    done() {
      if (!shown && sent === 0) return;
      if (!tty && drawnAt === sent) return;
      draw(true);
    },
  };
}
