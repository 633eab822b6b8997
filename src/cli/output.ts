/**
 * CLI output: one clear line per error, progress as plain log lines unless stderr is a terminal.
 */
import { ExitCodes, exitCodeOf, isAutopruneError } from '../core/errors.js';

export const isTty = Boolean(process.stderr.isTTY) && !process.env.CI;

export function info(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Wrap a command handler: known errors become one line on stderr and their class's exit code
 * (docs/exit-codes.md). Any other error is a bug, or a library's failure the code did not
 * anticipate: one line too (its first), exit 70; AUTOPRUNE_DEBUG=1 prints the stack as well.
 */
export function handler<A>(fn: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      await fn(args);
    } catch (e) {
      fail(e);
    }
  };
}

/** Reports `e` as handler() does and sets the exit code; exits at once when `exit` (the process may hold handles open). */
export function fail(e: unknown, exit = false): void {
  if (isAutopruneError(e)) {
    process.stderr.write(`autoprune: ${e.message}\n`);
    process.exitCode = exitCodeOf(e.code);
  } else {
    const first = (e instanceof Error ? e.message : String(e)).split('\n')[0].trim().slice(0, 300);
    process.stderr.write(`autoprune: unexpected error: ${first || String(e)} (AUTOPRUNE_DEBUG=1 shows where)\n`);
    if (process.env.AUTOPRUNE_DEBUG) process.stderr.write(`${e instanceof Error ? e.stack : ''}\n`);
    process.exitCode = ExitCodes.INTERNAL;
  }
  if (exit) process.exit(process.exitCode);
}

/** Fixed-width table for terminals and logs. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export { mmacs, pct } from '../core/format.js';
