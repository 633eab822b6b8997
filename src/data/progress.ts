/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal (and not under CI): logs
 * and pipes get the summary line the caller prints instead. Redrawn at most every 100 ms.
 */
export interface ProgressBar {
  update(done: number): void;
  done(): void;
}

const NOOP: ProgressBar = { update: () => {}, done: () => {} };

export function progressBar(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY || process.env.CI) return NOOP;
  const started = performance.now();
  let last = 0;
  let drawn = false;
  const draw = (done: number): void => {
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, total));
    const rate = done / Math.max(1e-3, (performance.now() - started) / 1000);
    stream.write(`\r\x1b[K${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} (${Math.round(rate)}/s)`);
    drawn = true;
  };
  return {
    update(done) {
      const t = performance.now();
      if (t - last < 100 && done < total) return;
      last = t;
      draw(done);
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
