/**
 * Who renews leases. A lease (a worker's on a trial, the driver's on the study) is renewed every
 * third of its length; if the renewal waits behind a synchronous engine call on the main thread
 * (onnxruntime-node's session.run, a controller's tell) the lease can expire under a healthy process
 * and its result is dropped. So renewals run on a thread of their own with its own store connection
 * (`openLeaseKeeper`): a blocked main thread cannot delay them. Stores that live only in this process
 * (memory, or a store with an injected test clock) have no second connection: their renewals are
 * timers on the main thread (`timerLeases`), as in-process tests want.
 */
import { Worker } from 'node:worker_threads';
import { AutopruneError, type ErrorCode, ErrorCodes } from '../core/errors.js';
import type { DriverLease, Store, TrialLease } from '../store/types.js';
import { keepAlive } from './signals.js';

export type Lease = { readonly kind: 'trial'; readonly lease: TrialLease } | { readonly kind: 'driver'; readonly lease: DriverLease };

export interface LeaseKeeper {
  /** True when renewals run on their own thread (a blocked main thread does not stop them). */
  readonly offThread: boolean;
  /** Renews `lease` to now + leaseMs every `everyMs` until stopped; the first failure stops it and goes to `onLost`. */
  keep(lease: Lease, leaseMs: number, everyMs: number, onLost: (e: Error) => void): { stop: () => void };
  close(): Promise<void>;
}

/** One renewal through a store (shared by both keepers: the thread calls it on its own connection). */
export function renew(store: Store, l: Lease, leaseMs: number): Promise<void> {
  return l.kind === 'trial' ? store.heartbeat(l.lease, leaseMs) : store.renewDriver(l.lease, leaseMs);
}

/** Renewals as timers on this (the main) thread. */
export function timerLeases(store: Store): LeaseKeeper {
  return {
    offThread: false,
    keep: (l, leaseMs, everyMs, onLost) => keepAlive(() => renew(store, l, leaseMs), everyMs, onLost),
    close: async () => undefined,
  };
}

/** Messages between this thread and the lease thread (lease-thread.ts). */
export type ToLeaseThread =
  | { readonly op: 'keep'; readonly id: number; readonly lease: Lease; readonly leaseMs: number; readonly everyMs: number }
  | { readonly op: 'stop'; readonly id: number }
  | { readonly op: 'close' };
export type FromLeaseThread =
  | { readonly op: 'ready' }
  | { readonly op: 'failed'; readonly message: string }
  | { readonly op: 'lost'; readonly id: number; readonly code: string | null; readonly message: string }
  | { readonly op: 'closed' };

const THREAD_URL = new URL('./lease-thread-entry.js', import.meta.url);

/**
 * A lease thread on its own connection to `store.location`; timers on this thread when the store has
 * no location another connection can open, or when the thread cannot start (logged).
 */
export async function openLeaseKeeper(store: Store, log?: (line: string) => void): Promise<LeaseKeeper> {
  if (store.location === null) return timerLeases(store);
  try {
    return await ThreadLeases.start(store.location);
  } catch (e) {
    log?.(
      `lease renewals run on the main thread (the lease thread did not start: ${(e as Error).message}); a long synchronous evaluation can outlive its lease`,
    );
    return timerLeases(store);
  }
}

/** Runs `f` with a lease keeper (openLeaseKeeper) that is closed when `f` settles. */
export async function withLeaseKeeper<T>(store: Store, log: ((line: string) => void) | undefined, f: (leases: LeaseKeeper) => Promise<T>): Promise<T> {
  const leases = await openLeaseKeeper(store, log);
  try {
    return await f(leases);
  } finally {
    await leases.close();
  }
}

class ThreadLeases implements LeaseKeeper {
  readonly offThread = true;
  private nextId = 0;
  private readonly lost = new Map<number, (e: Error) => void>();
  private exited = false;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: FromLeaseThread) => {
      if (m.op !== 'lost') return;
      const onLost = this.lost.get(m.id);
      this.lost.delete(m.id);
      onLost?.(m.code === null ? new Error(m.message) : new AutopruneError(m.code as ErrorCode, m.message));
    });
    // A dead lease thread renews nothing: every lease it held is reported lost.
    worker.on('exit', () => ((this.exited = true), this.loseAll(`the lease thread exited`)));
    worker.on('error', (e) => this.loseAll(`the lease thread failed: ${e.message}`));
  }

  static start(location: string): Promise<ThreadLeases> {
    const worker = new Worker(THREAD_URL, { workerData: { location } });
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => (worker.terminate().catch(() => undefined), reject(e));
      const exited = (code: number) => fail(new Error(`it exited with code ${code} before it was ready`));
      worker.once('error', fail);
      worker.once('exit', exited);
      worker.once('message', (m: FromLeaseThread) => {
        worker.off('error', fail);
        worker.off('exit', exited);
        if (m.op !== 'ready') return fail(new Error(m.op === 'failed' ? m.message : `unexpected message ${m.op}`));
        worker.unref(); // never keeps the process alive on its own
        resolve(new ThreadLeases(worker));
      });
    });
  }

  keep(lease: Lease, leaseMs: number, everyMs: number, onLost: (e: Error) => void): { stop: () => void } {
    const id = this.nextId++;
    this.lost.set(id, onLost);
    this.post({ op: 'keep', id, lease, leaseMs, everyMs });
    return {
      stop: () => {
        if (this.lost.delete(id)) this.post({ op: 'stop', id });
      },
    };
  }

  async close(): Promise<void> {
    this.lost.clear();
    if (this.exited) return; // nothing to close, and no 'exit' would come again
    const closed = new Promise<void>((resolve) => {
      this.worker.on('message', (m: FromLeaseThread) => m.op === 'closed' && resolve());
      this.worker.once('exit', () => resolve());
    });
    this.post({ op: 'close' });
    await closed;
    await this.worker.terminate();
  }

  private post(m: ToLeaseThread): void {
    this.worker.postMessage(m);
  }

  private loseAll(reason: string): void {
    const all = [...this.lost.values()];
    this.lost.clear();
    for (const onLost of all) onLost(new AutopruneError(ErrorCodes.LEASE_LOST, reason));
  }
}
