/** Small async building blocks of the driver and workers: a wake-up and a periodic keep-alive. */

/** Wakes every waiter; a waiter also returns after `ms` (polling for other processes' writes). */
export class Wakeup {
  private waiters: (() => void)[] = [];

  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.push(done);
    });
  }
}

/**
 * Calls `beat` every `everyMs` on this (the main) thread until stopped; the first failure stops it
 * and is reported to `onLost`. Synchronous work on this thread delays it: leases.ts uses it only
 * for stores without a second connection (memory); the others renew on the lease thread.
 */
export function keepAlive(beat: () => Promise<void>, everyMs: number, onLost: (e: Error) => void): { stop: () => void } {
  let stopped = false;
  const timer = setInterval(() => {
    beat().catch((e: Error) => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      onLost(e);
    });
  }, everyMs);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
