/**
 * Training and inference throughput of the zoo models on one tfjs backend, through the project's
 * own code paths: `train()` (src/evaluators/train.ts, batch order, tensors and Adam as in a real
 * fine-tune) and `latencyMs()` (batched `model.predict`). Synthetic data; each model is rebuilt per
 * backend because a LayersModel's weights live on the backend that was active when it was built.
 *
 * Units: MACs per image from `costOf` (docs/flops.md); 1 MAC = 2 FLOPs, so
 * GFLOP/s = 2 * MACs * img/s / 1e9. For training this counts the forward pass only (a training step
 * does roughly 3x that work: forward, input gradient, weight gradient).
 */
import * as tf from '@tensorflow/tfjs';
import { makeSynthetic } from '../src/data/synthetic.js';
import type { ImageShape } from '../src/data/types.js';
import { initBackend } from '../src/engine/backend.js';
import { latencyMs, train } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { buildZooModel, type ZooName } from '../src/model/zoo.js';

export const BENCH_BACKENDS = ['wasm', 'cpu'] as const;
export type BenchBackend = (typeof BENCH_BACKENDS)[number];

export const BENCH_SHAPE: ImageShape = [28, 28, 1];
export const BENCH_CLASSES = 10;

/** How much to run for one (model, backend) measurement. */
export interface ThroughputSettings {
  readonly trainBatch: number;
  /** Untimed training steps first (JIT, kernel caches, wasm heap growth, Adam's slots). */
  readonly trainWarmup: number;
  /** Batch of the warm-up steps; smaller than `trainBatch` only where a step takes minutes (cpu). */
  readonly trainWarmupBatch: number;
  /** Timed training steps; the median step time is reported. 0 skips training (reported as NaN). */
  readonly trainSteps: number;
  readonly inferBatch: number;
  /** Timed inference batches after `latencyMs`' one warm-up batch; the median is reported. */
  readonly inferRuns: number;
}

/**
 * Full and quick (`--quick`, smoke/CI, < 60 s) settings. `cpu` is pure JS and its training is
 * several hundred times slower than wasm (measured here: 0.1-0.4 img/s, i.e. a batch-16 step of
 * resnet-20 takes minutes), so it runs a reference-sized measurement only: one timed step after a
 * batch-1 warm-up, one timed inference batch. Per image, cpu barely depends on the batch size, so
 * the smaller batches do not flatter wasm. `--quick` skips cpu training altogether.
 */
export const BENCH_SETTINGS: Record<'full' | 'quick', Record<BenchBackend, ThroughputSettings>> = {
  full: {
    wasm: { trainBatch: 64, trainWarmup: 2, trainWarmupBatch: 64, trainSteps: 10, inferBatch: 256, inferRuns: 10 },
    cpu: { trainBatch: 16, trainWarmup: 1, trainWarmupBatch: 1, trainSteps: 1, inferBatch: 64, inferRuns: 1 },
  },
  quick: {
    wasm: { trainBatch: 64, trainWarmup: 1, trainWarmupBatch: 64, trainSteps: 2, inferBatch: 256, inferRuns: 2 },
    cpu: { trainBatch: 1, trainWarmup: 0, trainWarmupBatch: 1, trainSteps: 0, inferBatch: 16, inferRuns: 1 },
  },
};

export interface MemorySnapshot {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly numTensors: number;
  readonly numBytes: number;
}

export interface ModelMeasurement {
  readonly model: ZooName;
  readonly backend: BenchBackend;
  readonly macs: number;
  readonly settings: ThroughputSettings;
  readonly trainImgPerSec: number;
  readonly inferImgPerSec: number;
  /** Forward-pass FLOPs per second while training (see the file comment). */
  readonly trainGflops: number;
  readonly inferGflops: number;
  /** After the model and everything it made were disposed. */
  readonly memory: MemorySnapshot;
  /** numTensors after minus before; anything but 0 is a leak. */
  readonly leakedTensors: number;
}

export function memorySnapshot(): MemorySnapshot {
  const m = process.memoryUsage();
  const t = tf.memory();
  const mib = (b: number): number => b / 2 ** 20;
  return { rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), numTensors: t.numTensors, numBytes: t.numBytes };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export const gflops = (macs: number, imgPerSec: number): number => (2 * macs * imgPerSec) / 1e9;

/** Median training step time in ms over `steps` steps of `train()` (a fresh Adam each call). */
async function timeTrainingSteps(model: tf.LayersModel, batchSize: number, steps: number, seed: number): Promise<number> {
  const data = makeSynthetic({ shape: BENCH_SHAPE, numClasses: BENCH_CLASSES, trainCount: batchSize * steps, testCount: 0, seed }).train;
  const stamps: number[] = [performance.now()];
  await train(model, data, {
    epochs: 1,
    batchSize,
    learningRate: 1e-3,
    optimizer: 'adam',
    momentum: 0.9,
    numClasses: BENCH_CLASSES,
    seed,
    maxBatchesPerEpoch: steps,
    onProgress: () => stamps.push(performance.now()),
  });
  return median(stamps.slice(1).map((t, i) => t - stamps[i]));
}

/** MACs per image of an (unpruned) zoo model; backend-independent. */
export function zooMacs(model: tf.LayersModel): number {
  return costOf(analyzeModel(model), null).macs;
}

/**
 * Activates `backend`, builds `name` on it, times training then inference, disposes everything and
 * checks that the engine's tensor count is back where it started.
 */
export async function measureModel(name: ZooName, backend: BenchBackend, s: ThroughputSettings): Promise<ModelMeasurement> {
  await initBackend(backend);
  const before = tf.memory().numTensors;
  const model = buildZooModel(name, { inputShape: [...BENCH_SHAPE], numClasses: BENCH_CLASSES, width: 1, seed: 0 });
  let macs: number;
  let trainMs: number;
  let inferMsPerImage: number;
  try {
    macs = zooMacs(model);
    if (s.trainSteps > 0 && s.trainWarmup > 0) await timeTrainingSteps(model, s.trainWarmupBatch, s.trainWarmup, 1);
    trainMs = s.trainSteps > 0 ? await timeTrainingSteps(model, s.trainBatch, s.trainSteps, 2) : NaN;
    inferMsPerImage = latencyMs(model, BENCH_SHAPE, { batchSize: s.inferBatch, runs: s.inferRuns });
  } finally {
    model.dispose();
  }
  const memory = memorySnapshot();
  const trainImgPerSec = (1000 * s.trainBatch) / trainMs;
  const inferImgPerSec = 1000 / inferMsPerImage;
  return {
    model: name,
    backend,
    macs,
    settings: s,
    trainImgPerSec,
    inferImgPerSec,
    trainGflops: gflops(macs, trainImgPerSec),
    inferGflops: gflops(macs, inferImgPerSec),
    memory,
    leakedTensors: memory.numTensors - before,
  };
}

export interface Speedup {
  readonly model: ZooName;
  /** wasm img/s over cpu img/s, both measured in the same run. */
  readonly train: number;
  readonly infer: number;
}

export function speedups(results: readonly ModelMeasurement[]): Speedup[] {
  const out: Speedup[] = [];
  for (const w of results.filter((r) => r.backend === 'wasm')) {
    const c = results.find((r) => r.backend === 'cpu' && r.model === w.model);
    if (c) out.push({ model: w.model, train: w.trainImgPerSec / c.trainImgPerSec, infer: w.inferImgPerSec / c.inferImgPerSec });
  }
  return out;
}

const fmt = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');
const ratio = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(1)}x` : '—');

export function renderThroughputTable(results: readonly ModelMeasurement[]): string {
  const rows = results.map((r) => [
    r.model,
    fmt(r.macs / 1e6, 2),
    r.backend === 'cpu' ? 'cpu (reference)' : r.backend,
    fmt(r.trainImgPerSec),
    fmt(r.inferImgPerSec),
    fmt(r.trainGflops, 2),
    fmt(r.inferGflops, 2),
  ]);
  return table(['model', 'MMACs', 'backend', 'train img/s', 'infer img/s', 'GFLOP/s train', 'GFLOP/s infer'], rows);
}

export function renderSpeedupTable(rows: readonly Speedup[]): string {
  return table(
    ['model', 'train wasm/cpu', 'infer wasm/cpu'],
    rows.map((r) => [r.model, ratio(r.train), ratio(r.infer)]),
  );
}

export function renderMemoryTable(results: readonly ModelMeasurement[]): string {
  return table(
    ['after', 'rss MiB', 'heap MiB', 'tf numTensors', 'leaked tensors'],
    results.map((r) => [
      `${r.model} / ${r.backend}`,
      fmt(r.memory.rssMiB, 0),
      fmt(r.memory.heapUsedMiB, 0),
      String(r.memory.numTensors),
      String(r.leakedTensors),
    ]),
  );
}

export function describeSettings(backend: BenchBackend, s: ThroughputSettings): string {
  const training =
    s.trainSteps > 0
      ? `train batch ${s.trainBatch}, ${s.trainWarmup} warm-up step(s) of batch ${s.trainWarmupBatch} + ${s.trainSteps} timed (median)`
      : 'training not measured';
  return `${backend}: ${training}; inference batch ${s.inferBatch}, 1 warm-up + ${s.inferRuns} timed batch(es) (median)`;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
