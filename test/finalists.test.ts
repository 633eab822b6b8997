import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TrialRecord } from '../src/store/types.js';
import { chooseFinalists } from '../src/study/finalists.js';

const t = (number: number, macs: number, acc: number | null, state: TrialRecord['state'] = 'complete'): TrialRecord => ({
  study: 's',
  number,
  state,
  candidate: { channels: [1] },
  key: String(number),
  cost: { macs, params: 1 },
  stage: 'proxy',
  parent: null,
  attempts: 1,
  controller: 'random',
  metrics: acc === null ? {} : { proxyAccuracy: acc },
  error: null,
  worker: null,
  createdAt: '',
  startedAt: null,
  finishedAt: null,
  finishSeq: null,
});

// base 100 MACs, targets 0.7 and 0.5 with window 0.03. Front (MACs, acc): 30/.2, 52/.5, 72/.7, 90/.85.
const TRIALS = [t(0, 30, 0.2), t(1, 52, 0.5), t(2, 55, 0.45), t(3, 72, 0.7), t(4, 74, 0.6), t(5, 90, 0.85), t(6, 40, 0.9, 'failed'), t(7, 20, null, 'running')];

test('finalists: the best front point per target (within its window) first, then the rest of the front by accuracy', () => {
  const opts = { baseMacs: 100, targets: [0.7, 0.5], window: 0.03 };
  assert.deepEqual(chooseFinalists(TRIALS, { ...opts, count: 2 }), [3, 1]);
  assert.deepEqual(chooseFinalists(TRIALS, { ...opts, count: 3 }), [3, 1, 5]);
  assert.deepEqual(chooseFinalists(TRIALS, { ...opts, count: 10 }), [3, 1, 5, 0]); // only front points; failed/running never
  assert.deepEqual(chooseFinalists(TRIALS, { ...opts, count: 0 }), []);
  // No window: 72 no longer counts for 70% (best <= 70 is trial 1 at 52), and 52 no longer for 50% (trial 0 at 30).
  assert.deepEqual(chooseFinalists(TRIALS, { ...opts, window: 0, count: 2 }), [1, 0]);
});
