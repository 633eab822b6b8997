/**
 * A worker process of bench/pg-scaling.ts: the `autoprune worker` claim loop (serveStudy, which runs
 * src/study/worker.ts) on an evaluator that only sleeps, so the bench measures the claim path.
 *   node --import tsx bench/pg-fake-worker.ts <store URL> <study> <sleep ms>
 * Prints `ready` once the store is open; exits when the study is no longer running.
 */
import { serveStudy } from '../src/app/index.js';
import type { Evaluator } from '../src/evaluators/types.js';
import { openStore } from '../src/store/index.js';

const [url, study, ms] = process.argv.slice(2);
const sleepMs = Number(ms);

/** Returns the predicted cost (the worker checks it) after `sleepMs`. */
function sleeper(costOf: (trial: number) => { macs: number; params: number }): Evaluator {
  return {
    capacity: 1,
    evaluate: async (req) => {
      await new Promise((r) => setTimeout(r, sleepMs));
      return { proxyAccuracy: 0.5, latencyMs: 1, cost: costOf(req.trial), timings: { sleep: sleepMs / 1000 }, worker: 'fake' };
    },
    close: async () => undefined,
  };
}

const store = await openStore(url);
// Every bench trial costs what its channels say (see pg-scaling.ts), so the check can be reproduced here.
const evaluator = sleeper((n) => ({ macs: 1000 + n, params: 10 }));
process.stdout.write('ready\n');
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
await serveStudy({
  store,
  study,
  evaluator,
  concurrency: 1,
  leaseMs: 30_000,
  stop: stop.signal,
  giveUpMs: 60_000,
  pollMs: 100,
  watchMs: 1000,
  log: () => undefined,
});
await store.close();
