/** `pick --max-latency` on a study evaluated by several hosts: one engine on one host at a time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measuringHost, oneLatencyEngine } from '../src/cli/commands/pick.js';
import type { FinalRecord, TrialRecord } from '../src/store/index.js';

const trial = (number: number, worker: string | null, timings: Record<string, number>) =>
  ({ number, worker, state: 'complete', metrics: { latencyMs: 1, timings } }) as unknown as TrialRecord;

test('measuringHost: the host of `host:pid[:slot]` worker names, null for names without one', () => {
  assert.equal(measuringHost({ worker: 'gpu-box-2:4711:0' }), 'gpu-box-2');
  assert.equal(measuringHost({ worker: 'laptop:99' }), 'laptop');
  assert.equal(measuringHost({ worker: 'worker-0' }), null);
  assert.equal(measuringHost({ worker: null }), null);
});

test('latencies of one engine on one host: the pair with most trials by default, or the one asked for', () => {
  const trials = [
    trial(0, 'a:1:0', { 'latency@onnxruntime': 0.1 }),
    trial(1, 'a:1:1', { 'latency@onnxruntime': 0.1 }),
    trial(2, 'b:7:0', { 'latency@onnxruntime': 0.05 }),
    trial(3, 'b:7:0', { 'latency@tfjs': 0.3 }),
    trial(4, 'b:8:0', { 'latency@tfjs': 0.3 }),
    trial(5, 'b:8:0', { 'latency@tfjs': 0.3 }),
  ];
  const finals = [{ trial: 0, latencyMs: 3 }] as unknown as FinalRecord[];
  const auto = oneLatencyEngine(trials, finals);
  assert.deepEqual([auto.engine, auto.host, auto.trials.map((t) => t.number), auto.dropped], ['tfjs', 'b', [3, 4, 5], 3]);
  const ort = oneLatencyEngine(trials, finals, 'onnxruntime');
  assert.deepEqual([ort.host, ort.trials.map((t) => t.number)], ['a', [0, 1]], 'host a measured most onnxruntime trials; b\'s faster one is not mixed in');
  const ortB = oneLatencyEngine(trials, finals, 'onnxruntime', 'b');
  assert.deepEqual(ortB.trials.map((t) => t.number), [2]);
  assert.equal(ortB.finals[0].latencyMs, null);
});
