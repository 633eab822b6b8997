/**
 * The worker pool's failure handling, with a stand-in worker (test/fixtures/crash-worker.js) so the
 * test is about the pool, not tfjs: a worker that dies mid-evaluation fails only its own request
 * and is replaced; an evaluator error comes back as a coded error; a worker that cannot start is a
 * clear error at creation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../src/config/index.js';
import { AutopruneError } from '../src/core/errors.js';
import { WorkerPool } from '../src/evaluators/pool.js';
import { waitFor } from './helpers.js';

const workerUrl = new URL('./fixtures/crash-worker.js', import.meta.url);
const cfg = (name: string) =>
  resolveConfig({ name, model: { zoo: 'plain-cnn', checkpoint: `/nonexistent/${name}/model.json` }, run: { store: '/tmp/unused.db' } });
const req = (trial: number) => ({ trial, candidate: { channels: [1] }, stage: 'proxy' as const });

test('a worker that dies mid-evaluation fails only that request; the pool replaces it and goes on', async () => {
  const pool = await WorkerPool.create(cfg('crashy'), 2, { workerUrl });
  try {
    const results = await Promise.allSettled([pool.evaluate(req(1)), pool.evaluate(req(13)), pool.evaluate(req(2))]);
    assert.equal(results[0].status, 'fulfilled');
    assert.equal(results[2].status, 'fulfilled');
    assert.equal(results[1].status, 'rejected');
    assert.match(String((results[1] as PromiseRejectedResult).reason), /worker-\d exited with code 3/);
    // A replacement starts; capacity comes back to 2 and both workers serve new requests.
    await waitFor(() => pool.capacity === 2, 10_000, 'the replacement worker');
    const more = await Promise.all([3, 4, 5, 6].map((t) => pool.evaluate(req(t))));
    assert.deepEqual(
      more.map((r) => r.proxyAccuracy),
      [0.03, 0.04, 0.05, 0.06],
    );
    assert.deepEqual(new Set(more.map((r) => r.worker)).size, 2);
  } finally {
    await pool.close();
  }
});

test('an evaluator error comes back as a coded AutopruneError and the worker stays usable', async () => {
  const pool = await WorkerPool.create(cfg('errors'), 1, { workerUrl });
  try {
    await assert.rejects(
      pool.evaluate(req(14)),
      (e: unknown) => e instanceof AutopruneError && e.code === 'CANDIDATE_INVALID' && /bad candidate/.test(e.message),
    );
    assert.equal((await pool.evaluate(req(7))).proxyAccuracy, 0.07);
  } finally {
    await pool.close();
  }
});

test("a thread is given what an evaluator reads and what loads data and model, not the search's or store's config", async () => {
  const pool = await WorkerPool.create(cfg('keys'), 1, { workerUrl });
  try {
    assert.equal((await pool.evaluate(req(15))).worker, 'data,evaluation,model,run,train; run: backend,concurrency,engine,seed');
  } finally {
    await pool.close();
  }
});

test('a worker that cannot start makes create() fail with its message', async () => {
  await assert.rejects(WorkerPool.create(cfg('fatal-on-start'), 2, { workerUrl }), /could not load its model/);
});
