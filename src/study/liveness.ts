/**
 * Worker and driver names are `host:pid[:slot]`. A process of this host that no longer exists
 * holds nothing: its leases can be taken over at once instead of after they expire (a kill -9'd
 * search is resumed without waiting a lease out). Other hosts' leases always run their course.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export function processName(slot?: number | string): string {
  return slot === undefined ? `${hostname()}:${process.pid}` : `${hostname()}:${process.pid}:${slot}`;
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

/** True when `name` names a process of this host that is gone (never for another host's names). */
export function goneLocally(name: string): boolean {
  const [host, pid] = name.split(':');
  if (host !== hostname() || !/^\d+$/.test(pid ?? '')) return false;
  return Number(pid) !== process.pid && !alive(Number(pid));
}
