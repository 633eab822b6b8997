/**
 * Lease renewals on their own thread (src/study/leases.ts): a main thread blocked by a synchronous
 * engine call (onnxruntime-node's session.run, a controller's tell) must not lose its leases. Each
 * test runs the same scenario with the lease thread and with main-thread timers, so the oracle is
 * the difference: the thread keeps the lease, the timers (blocked) lose it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isAutopruneError } from '../src/core/errors.js';
import type { Candidate } from '../src/core/space.js';
import type { EvalRequest, EvalResult, Evaluator } from '../src/evaluators/types.js';
import { openStore } from '../src/store/index.js';
import { MemoryStore } from '../src/store/memory.js';
import type { Store } from '../src/store/types.js';
import { type LeaseKeeper, openLeaseKeeper, timerLeases } from '../src/study/leases.js';
import { evaluateClaim } from '../src/study/worker.js';
import { addTrial, newStudy, newTrial } from './store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'autoprune-leases-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const LEASE_MS = 1200; // long enough that a loaded host (CI beside other jobs) still renews in time
const BLOCK_MS = 4000; // > 3 leases: a lease renewed only by main-thread timers expires during it

/** Blocks this thread the way a synchronous engine call does (no timers, no messages run). */
function blockMainThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const cost = (c: Candidate) => ({ macs: c.channels.reduce((a, b) => a + b, 0), params: c.channels.length });

/** An evaluator whose engine runs synchronously on the main thread for BLOCK_MS. */
const blocking: Evaluator = {
  capacity: 1,
  close: async () => undefined,
  async evaluate(req: EvalRequest): Promise<EvalResult> {
    blockMainThread(BLOCK_MS);
    return { proxyAccuracy: 0.5, latencyMs: 1, cost: cost(req.candidate), timings: {}, worker: 'blocking' };
  },
};

let n = 0;
async function sqliteStudy(): Promise<Store> {
  const store = await openStore(join(dir, `s${n++}.db`));
  await store.createStudy(newStudy('a'));
  await addTrial(store, 'a', newTrial([8, 8], { cost: cost({ channels: [8, 8] }) }));
  return store;
}

async function withKeeper<T>(store: Store, onThread: boolean, f: (k: LeaseKeeper) => Promise<T>): Promise<T> {
  const k = onThread ? await openLeaseKeeper(store) : timerLeases(store);
  assert.equal(k.offThread, onThread);
  try {
    return await f(k);
  } finally {
    await k.close();
  }
}

describe('lease renewals off the main thread', () => {
  test('a store that lives only in this process (memory) renews on main-thread timers', async () => {
    const k = await openLeaseKeeper(new MemoryStore());
    assert.equal(k.offThread, false);
    await k.close();
  });

  test('a store the lease thread cannot open: renewals fall back to main-thread timers, and the log says why', async () => {
    const logs: string[] = [];
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const unopenable = Object.assign(Object.create(new MemoryStore()) as Store, { location: join(file, 'store.db') }); // its folder is a file
    const k = await openLeaseKeeper(unopenable, (l) => logs.push(l));
    assert.equal(k.offThread, false);
    assert.match(logs.join('\n'), /^lease renewals run on the main thread \(the lease thread did not start: .*a-file.*\)/);
    await k.close();
  });

  for (const onThread of [true, false]) {
    test(`a trial evaluated by a synchronous engine for ${BLOCK_MS} ms under a ${LEASE_MS} ms lease is ${onThread ? 'completed (lease thread)' : 'dropped (main-thread timers)'}`, async () => {
      const store = await sqliteStudy();
      const logs: string[] = [];
      // The keeper starts first (as in runStudy): a thread that starts slowly on a loaded host must not eat the lease.
      const done = await withKeeper(store, onThread, async (leases) => {
        const claim = (await store.claimTrial('a', 'w', { leaseMs: LEASE_MS }))!;
        return evaluateClaim(
          {
            store,
            study: 'a',
            name: 'w',
            evaluator: blocking,
            leaseMs: LEASE_MS,
            heartbeatMs: 200,
            leases,
            stop: new AbortController().signal,
            log: (l) => logs.push(l),
          },
          claim,
        );
      });
      const t = (await store.getTrial('a', 0))!;
      if (onThread) {
        assert.deepEqual([done?.state, t.state, t.metrics.proxyAccuracy], ['complete', 'complete', 0.5]);
      } else {
        assert.equal(done, null);
        assert.match(logs.join('\n'), /trial 0: result dropped, the lease was lost/);
        assert.equal(t.state, 'running', 'left for the reaper: its lease expired');
      }
      await store.close();
    });

    test(`a driver blocked for ${BLOCK_MS} ms ${onThread ? 'keeps' : 'loses'} its study to a second driver (${onThread ? 'lease thread' : 'main-thread timers'})`, async () => {
      const store = await sqliteStudy();
      const lost: Error[] = [];
      const taken = await withKeeper(store, onThread, async (leases) => {
        const lease = await store.acquireDriver('a', 'first', LEASE_MS);
        const renew = leases.keep({ kind: 'driver', lease }, LEASE_MS, 200, (e) => lost.push(e));
        blockMainThread(BLOCK_MS);
        const second = await store.acquireDriver('a', 'second', LEASE_MS).then(
          () => true,
          (e: unknown) => (isAutopruneError(e) ? false : Promise.reject(e)),
        );
        renew.stop();
        return second;
      });
      assert.equal(taken, !onThread);
      assert.deepEqual(lost, []);
      await store.close();
    });
  }

  test('a lease thread that dies reports every lease it held as lost, and closing it afterwards returns', async () => {
    const store = await sqliteStudy();
    const claim = (await store.claimTrial('a', 'w', { leaseMs: 60_000 }))!;
    const leases = await openLeaseKeeper(store);
    const lost = new Promise<Error>((resolve) => leases.keep({ kind: 'trial', lease: claim }, 60_000, 10_000, resolve));
    await (leases as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate(); // white-box: the thread crashes
    const e = await lost;
    assert.ok(isAutopruneError(e) && e.code === 'LEASE_LOST' && /lease thread exited/.test(e.message), e.message);
    await leases.close(); // would hang if it waited for an 'exit' that already came
    await store.close();
  });

  test('a renewal the store refuses reaches the main thread as LEASE_LOST (the error code crosses the thread)', async () => {
    const store = await sqliteStudy();
    const stale = (await store.claimTrial('a', 'w', { leaseMs: 1 }))!;
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await store.reapExpired('a', { maxAttempts: 3 }), { requeued: [0], failed: [] });
    assert.ok(await store.claimTrial('a', 'w2', { leaseMs: 60_000 }), 'another worker owns the trial now');
    const lost = await withKeeper(store, true, (leases) => new Promise<Error>((resolve) => leases.keep({ kind: 'trial', lease: stale }, 60_000, 50, resolve)));
    assert.ok(isAutopruneError(lost) && lost.code === 'LEASE_LOST', `${lost.name}: ${lost.message}`);
    await store.close();
  });
});
