/** `pick --max-latency` on a study evaluated by several hosts: one engine on one host and device at a time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuDevice, defaultDevice, studyEvaluator } from '../src/app/index.js';
import type { EvalResult, Evaluator } from '../src/evaluators/types.js';
import { measuringHost, oneLatencyEngine } from '../src/report/pick.js';
import { type FinalRecord, openStore, type TrialRecord } from '../src/store/index.js';

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
  assert.deepEqual([ort.host, ort.trials.map((t) => t.number)], ['a', [0, 1]], "host a measured most onnxruntime trials; b's faster one is not mixed in");
  const ortB = oneLatencyEngine(trials, finals, 'onnxruntime', 'b');
  assert.deepEqual(
    ortB.trials.map((t) => t.number),
    [2],
  );
  assert.equal(ortB.finals[0].latencyMs, null);
});

const measured = (number: number, host: string, device: string, engine: string, worker = 'w:1:0') =>
  ({
    number,
    worker,
    state: 'complete',
    metrics: { latencyMs: 1, latencyHost: host, latencyDevice: device, timings: { [`latency@${engine}`]: 0.1 } },
  }) as unknown as TrialRecord;

test('latencies of one engine on one host AND one device: a GPU and a CPU of one host are not mixed', () => {
  const trials = [
    measured(0, 'gpu-box', 'cuda:0', 'onnxruntime'),
    measured(1, 'gpu-box', 'cuda:0', 'onnxruntime'),
    measured(2, 'gpu-box', 'cpu:AMD EPYC 9B45', 'onnxruntime'),
    measured(3, 'gpu-box', 'cuda:1', 'onnxruntime'),
    // The recorded host wins over the host in the worker's name.
    measured(4, 'gpu-box', 'cuda:0', 'onnxruntime', 'laptop:9:0'),
  ];
  const auto = oneLatencyEngine(trials, []);
  assert.deepEqual([auto.engine, auto.host, auto.device, auto.trials.map((t) => t.number), auto.dropped], ['onnxruntime', 'gpu-box', 'cuda:0', [0, 1, 4], 2]);
  const cpu = oneLatencyEngine(trials, [], undefined, undefined, 'cpu:AMD EPYC 9B45');
  assert.deepEqual(
    cpu.trials.map((t) => t.number),
    [2],
  );
  assert.equal(measuringHost(trials[4]), 'gpu-box');
});

test("finalists' latencies count only when measured by the chosen engine (tfjs) on the same host and device", () => {
  const trials = [measured(0, 'a', 'cpu:X', 'tfjs'), measured(1, 'a', 'cpu:X', 'tfjs')];
  const finals = [
    { trial: 0, latencyMs: 3, latencyHost: 'a', latencyDevice: 'cpu:X' },
    { trial: 1, latencyMs: 2, latencyHost: 'b', latencyDevice: 'cpu:X' },
    { trial: 1, latencyMs: 2, latencyHost: 'a', latencyDevice: 'cuda:0' },
    { trial: 1, latencyMs: 2 },
  ] as unknown as FinalRecord[];
  assert.deepEqual(
    oneLatencyEngine(trials, finals).finals.map((f) => f.latencyMs),
    [3, null, null, null],
  );
});

test('studyEvaluator stamps each result with this host and its device; what the evaluator said is kept', async () => {
  const results: EvalResult[] = [
    { latencyMs: 1, cost: { macs: 1, params: 1 }, timings: { 'latency@onnxruntime': 0.1 }, worker: 'x' },
    { latencyMs: 1, cost: { macs: 1, params: 1 }, timings: { 'latency@tfjs': 0.1 }, worker: 'x' },
    { latencyMs: 1, cost: { macs: 1, params: 1 }, timings: {}, worker: 'x', latencyHost: 'elsewhere', latencyDevice: 'cuda:3' },
  ];
  const inner: Evaluator = { capacity: 1, evaluate: async (req) => results[req.trial], close: async () => undefined };
  const store = await openStore(':memory:');
  const ev = studyEvaluator(inner, store, 's', 'host-7');
  const got = await Promise.all([0, 1, 2].map((trial) => ev.evaluate({ trial, candidate: { channels: [] }, stage: 'proxy' })));
  assert.deepEqual(
    got.map((r) => [r.latencyHost, r.latencyDevice]),
    [
      ['host-7', cpuDevice()],
      ['host-7', cpuDevice()],
      ['elsewhere', 'cuda:3'],
    ],
  );
  assert.match(cpuDevice(), /^cpu:\S/);
  assert.equal(
    defaultDevice(results[0], () => ['cuda', 'cpu']),
    'cuda:0',
    'onnxruntime with its CUDA provider installed',
  );
  assert.equal(
    defaultDevice(results[1], () => ['cuda', 'cpu']),
    cpuDevice(),
    'tfjs runs on the CPU here',
  );
  await store.close();
});
