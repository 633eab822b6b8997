/**
 * A pool of worker threads, each with its own tfjs (wasm runs single-threaded under Node, so
 * parallel candidates are the way to use several cores). Requests go to an idle worker or wait.
 * A worker that dies is replaced; its request fails (the trial is marked failed, never lost).
 */
import { Worker } from 'node:worker_threads';
import { AutopruneError, type ErrorCode, ErrorCodes } from '../core/errors.js';
import type { BaseSource, EvaluatorOptions } from './options.js';
import { type Splits, shareSplits } from './setup.js';
import type { EvalRequest, EvalResult, Evaluator } from './types.js';

interface Slot {
  name: string;
  worker: Worker;
  busy: boolean;
  pending?: { id: number; resolve: (r: EvalResult) => void; reject: (e: Error) => void };
}

const WORKER_URL = new URL('./worker-entry.js', import.meta.url);

export class WorkerPool implements Evaluator {
  private readonly slots: Slot[] = [];
  private readonly queue: (() => void)[] = [];
  private nextId = 0;
  private closed = false;
  /** Workers started but not yet ready (a replacement for a dead one counts). */
  private spawning = 0;

  private constructor(
    private readonly cfg: EvaluatorOptions & BaseSource,
    private readonly workerUrl: URL,
    private readonly splits: Splits | undefined,
  ) {}

  get capacity(): number {
    return this.slots.length;
  }

  /**
   * `splits`: data the caller already loaded; moved into shared memory once and read by every
   * worker (otherwise each worker loads its own copy). `workerUrl` replaces the tfjs worker (tests
   * use a stand-in that crashes on demand).
   */
  static async create(cfg: EvaluatorOptions & BaseSource, size: number, options: { splits?: Splits; workerUrl?: URL } = {}): Promise<WorkerPool> {
    // Threads get what an evaluator reads and what loads the data and the base model, nothing else.
    // (The store's URL, which may hold a password, stays in this thread.)
    const { evaluation, train, data, model } = cfg;
    const run = { seed: cfg.run.seed, backend: cfg.run.backend, engine: cfg.run.engine, concurrency: cfg.run.concurrency };
    const pool = new WorkerPool({ evaluation, train, run, data, model }, options.workerUrl ?? WORKER_URL, options.splits && shareSplits(options.splits));
    try {
      await Promise.all(Array.from({ length: size }, (_, i) => pool.spawn(`worker-${i}`)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private spawn(name: string): Promise<Slot> {
    const worker = new Worker(this.workerUrl, { workerData: { config: this.cfg, name, splits: this.splits } });
    const slot: Slot = { name, worker, busy: false };
    this.spawning++;
    let starting = true;
    const started = (): void => {
      if (starting) this.spawning--;
      starting = false;
    };
    return new Promise((resolve, reject) => {
      worker.on(
        'message',
        (m: {
          ready?: true;
          fatal?: { message: string; code?: ErrorCode };
          id?: number;
          result?: EvalResult;
          error?: { message: string; code?: ErrorCode };
        }) => {
          if (m.ready) {
            started();
            this.slots.push(slot);
            resolve(slot);
            this.wake();
          } else if (m.fatal) {
            started();
            reject(new AutopruneError(m.fatal.code ?? ErrorCodes.INVALID_ARGUMENT, m.fatal.message));
          } else if (slot.pending && m.id === slot.pending.id) {
            const p = slot.pending;
            slot.pending = undefined;
            slot.busy = false;
            if (m.error) p.reject(new AutopruneError(m.error.code ?? ErrorCodes.INVALID_ARGUMENT, m.error.message));
            else p.resolve(m.result!);
            this.wake();
          }
        },
      );
      worker.on('error', (e) => {
        started();
        slot.pending?.reject(new Error(`${name} crashed: ${e.message}`));
        slot.pending = undefined;
        reject(e);
      });
      worker.on('exit', (code) => {
        started();
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        slot.pending?.reject(new Error(`${name} exited with code ${code}`));
        slot.pending = undefined;
        if (!this.closed && i >= 0) {
          // Replace the dead worker; if that fails too, waiting requests must not wait forever.
          void this.spawn(name).catch(() => this.queue.splice(0).forEach((r) => r()));
        }
        this.wake();
      });
    });
  }

  private wake(): void {
    this.queue.shift()?.();
  }

  async evaluate(req: EvalRequest): Promise<EvalResult> {
    let slot = this.slots.find((s) => !s.busy);
    while (!slot) {
      if (this.closed) throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, 'The worker pool is closed');
      if (this.slots.length === 0 && this.spawning === 0) throw new Error('Every evaluation worker has died and none could be restarted');
      await new Promise<void>((r) => this.queue.push(r));
      slot = this.slots.find((s) => !s.busy);
    }
    slot.busy = true;
    const id = this.nextId++;
    const s = slot;
    return new Promise<EvalResult>((resolve, reject) => {
      s.pending = { id, resolve, reject };
      s.worker.postMessage({ id, req });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.queue.splice(0).forEach((r) => r());
  }
}
