/**
 * One search process per study and store, on this machine: a lock file beside the store holding
 * the owner's pid. Starting a second search of the same study would re-queue the first one's
 * running trials and race it on every write; this refuses it instead. A lock left by a process that
 * died (SIGKILL, power loss) is stale and taken over. When studies are shared by several machines
 * (the PostgreSQL store), leases with heartbeats in the store replace this.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { AutopruneError, ErrorCodes } from '../core/errors.js';

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

export function lockPath(storePath: string, study: string): string {
  return `${storePath}.${study}.lock`;
}

/** Whether `pid` is a live autoprune process on this machine (Linux: checked through /proc). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync(cmdline)) return true; // no /proc: trust the signal check
  try {
    return readFileSync(cmdline, 'utf8').includes('autoprune');
  } catch {
    return false;
  }
}

/** Takes the study's lock or throws; returns the release function. In-memory stores need none. */
export function acquireStudyLock(storePath: string, study: string): () => void {
  if (storePath === ':memory:' || storePath.startsWith('memory:')) return () => undefined;
  const path = lockPath(storePath, study);
  const mine: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(mine));
      closeSync(fd);
      return () => {
        try {
          const held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
          if (held.pid === mine.pid && held.host === mine.host) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let other: LockInfo | null = null;
    try {
      other = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      other = null; // unreadable or half-written: treat as stale
    }
    if (other && other.host === mine.host && alive(other.pid)) {
      throw new AutopruneError(
        ErrorCodes.STORE_ERROR,
        `Study \`${study}\` is already being searched by process ${other.pid} (since ${other.startedAt}); stop it before resuming, or delete \`${path}\` if that process is gone`,
      );
    }
    if (other && other.host !== mine.host) {
      throw new AutopruneError(ErrorCodes.STORE_ERROR, `Study \`${study}\` is locked by process ${other.pid} on host \`${other.host}\`; delete \`${path}\` if that search is over`);
    }
    unlinkSync(path); // stale: its process is gone
  }
  throw new AutopruneError(ErrorCodes.STORE_ERROR, `Could not take the lock \`${path}\` of study \`${study}\``);
}
