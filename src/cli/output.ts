/**
 * CLI output: one clear line per error (STYLE.md principle 9), progress as plain log lines unless
 * stderr is a terminal.
 */
import { exitCodeOf, isAutopruneError } from '../core/errors.js';

export const isTty = Boolean(process.stderr.isTTY) && !process.env.CI;

export function info(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Wrap a command handler: known errors become one line on stderr and a non-zero exit code. */
export function handler<A>(fn: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      await fn(args);
    } catch (e) {
      if (isAutopruneError(e)) {
        process.stderr.write(`autoprune: ${e.message}\n`);
        process.exitCode = exitCodeOf(e.code);
        return;
      }
      throw e;
    }
  };
}

/** Fixed-width table for terminals and logs. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export const pct = (x: number | null | undefined, digits = 2): string => (x == null || Number.isNaN(x) ? '-' : `${(100 * x).toFixed(digits)}%`);
export const mmacs = (macs: number): string => (macs / 1e6).toFixed(2);
