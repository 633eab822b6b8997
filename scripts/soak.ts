/**
 * Soak of the study loop: N proxy evaluations (default 1000) in one study on SQLite, with the
 * tfjs evaluator in this process so its tensors can be counted; RSS, JS heap and tf.memory() are
 * sampled every `--every` finished trials, with the size of tfjs-wasm's WebAssembly memory. Memory is flat when the samples after warm-up do not
 * grow with the trial count.
 * `--heap-at 200,800` also writes a V8 heap snapshot at those trial counts (into --heap-dir, default
 * the working directory), to compare what the study retains per trial.
 *   node --expose-gc --import tsx scripts/soak.ts [--trials 1000] [--every 100] [--out soak.json] [--heap-at N,M]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../src/config/index.js';
import { initBackend } from '../src/engine/backend.js';
import { buildBaseArchitecture, loadSplits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import { accuracy } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { saveModel } from '../src/model/io.js';
import { openStore } from '../src/store/index.js';
import { runStudy } from '../src/study/run.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const trials = Number(arg('trials', '1000'));
const every = Number(arg('every', '100'));
const heapAt = new Set(arg('heap-at', '').split(',').filter(Boolean).map(Number));
const heapDir = arg('heap-dir', '.');
const dir = mkdtempSync(join(tmpdir(), 'autoprune-soak-'));

const cfg = resolveConfig({
  name: 'soak',
  data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [28, 28, 1], classes: 10, train: 512, test: 64 } },
  model: { zoo: 'plain-cnn', width: 0.5, checkpoint: join(dir, 'base', 'model.json') },
  search: { controller: { name: 'random' }, targets: [0.3, 0.5, 0.7], window: 0.1, budget: { trials } },
  evaluation: { calibration: { batches: 2, batchSize: 32 }, validation: { limit: 128 }, finalists: { count: 0 }, latency: { batchSize: 8, runs: 1 } },
  run: { backend: 'wasm', store: join(dir, 'soak.db'), workers: 'inline' },
});

interface Sample {
  trials: number;
  seconds: number;
  rssMb: number;
  heapMb: number;
  tensors: number;
  tfBytes: number;
  /** The wasm backend's linear memory (grows in steps, never shrinks; counted in RSS once touched). */
  wasmMb: number | null;
}

/** Size of tfjs-wasm's WebAssembly memory, or null on another backend. */
function wasmHeapMb(): number | null {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.buffer.byteLength / 2 ** 20 : null;
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const splits = await loadSplits(cfg);
  const base = buildBaseArchitecture(cfg, splits);
  await saveModel(base, join(dir, 'base'));
  const store = await openStore(cfg.run.store);
  const samples: Sample[] = [];
  const t0 = Date.now();
  let last = -1;
  const sample = (finished: number) => {
    const m = process.memoryUsage();
    const t = tf.memory();
    samples.push({
      trials: finished,
      seconds: (Date.now() - t0) / 1000,
      rssMb: m.rss / 2 ** 20,
      heapMb: m.heapUsed / 2 ** 20,
      tensors: t.numTensors,
      tfBytes: t.numBytes,
      wasmMb: wasmHeapMb(),
    });
    const s = samples.at(-1)!;
    console.log(
      `${s.trials}\t${s.seconds.toFixed(0)} s\tRSS ${s.rssMb.toFixed(1)} MB\theap ${s.heapMb.toFixed(1)} MB\twasm memory ${s.wasmMb?.toFixed(1) ?? '-'} MB\ttensors ${s.tensors} (${s.tfBytes} B)`,
    );
  };
  const summary = await runStudy({
    cfg,
    configHash: 'soak',
    store,
    analysis: analyzeModel(base),
    baseAccuracy: async () => ({ proxy: accuracy(base, splits.validation), test: accuracy(base, splits.test) }),
    evaluator: () => TfjsEvaluator.create(cfg, { splits, base }),
    engineOnMainThread: true,
    localWorkers: 1,
    budget: { trials, deadline: null },
    fresh: false,
    signal: new AbortController().signal,
    log: () => undefined,
    pollMs: 50,
    onProgress: (p) => {
      if (p.finished !== last && p.finished % every === 0) {
        last = p.finished;
        global.gc?.();
        sample(p.finished);
        if (heapAt.has(p.finished)) console.log(`heap snapshot: ${writeHeapSnapshot(join(heapDir, `soak-${p.finished}.heapsnapshot`))}`);
      }
    },
  });
  console.log(`${summary.evaluated} evaluations, study ${summary.study.state} (${summary.reason}) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const out = arg('out', '');
  if (out) writeFileSync(out, JSON.stringify({ trials, samples }, null, 2));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
