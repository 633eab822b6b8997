/** Shared by the tests that drive the CLI as a user would: `node bin/autoprune.js ...` in a child process. */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['bin/autoprune.js', ...args],
      { cwd: ROOT, env: { ...process.env, CI: '1' }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Start the CLI without waiting; `done` resolves with its exit code/signal and output. */
export function cliSpawn(...args: string[]): { child: ChildProcess; done: Promise<Run & { signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, ['bin/autoprune.js', ...args], { cwd: ROOT, env: { ...process.env, CI: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Run & { signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => r({ code: code ?? -1, signal, stdout, stderr })),
  );
  return { child, done };
}

/** stderr of a failed command: exactly one line, starting with `autoprune:`. */
export function oneLine(r: Run): string {
  assert.notEqual(r.code, 0, `expected a failure, got exit 0 with ${r.stdout}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0], /^autoprune: /);
  return lines[0];
}

export async function waitFor<T>(probe: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
