/**
 * Soak of the study loop: N proxy evaluations (default 1000) in one study on SQLite, through the
 * evaluator `autoprune search` builds (src/app/evaluators.ts: the engine's evaluator with artifacts
 * through the store), on `--engine onnxruntime` (the default proxy engine: the OnnxEvaluator,
 * candidates cut from the base model's graph) or `--engine tfjs` (inline, in this process, so its
 * tensors can be counted). RSS, JS heap (after a full GC), V8's reserved heap and `external` (so a
 * change of RSS can be told apart as V8's or native) and, on tfjs, tf.memory() and the size of
 * tfjs-wasm's WebAssembly memory are sampled every `--every` finished trials. Memory is flat when
 * the samples after warm-up do not grow with the trial count.
 * `--heap-at 200,800` also writes a V8 heap snapshot at those trial counts (into --heap-dir, default
 * the working directory), to compare what the study retains per trial. `--settle S` waits S seconds
 * between start-up (modules, data, base model) and the first trial: memory start-up gives back on a
 * timer, 6-9 s after the modules load (outside the main thread's heap), is then gone before the
 * first sample instead of showing as a fall of RSS between samples.
 *   node --expose-gc --import tsx scripts/soak.ts [--engine onnxruntime|tfjs] [--trials 1000] [--every 100] [--out soak.json] [--heap-at N,M] [--settle S]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import { hostEvaluator } from '../src/app/evaluators.js';
import { resolveConfig } from '../src/config/index.js';
import { initBackend } from '../src/engine/backend.js';
import { engineAccuracy } from '../src/evaluators/engine.js';
import { buildBaseArchitecture, loadSplits } from '../src/evaluators/setup.js';
import { analyzeModel } from '../src/model/analysis.js';
import { saveModel } from '../src/model/io.js';
import { openStore } from '../src/store/index.js';
import { runStudy } from '../src/study/run.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const engine = arg('engine', 'onnxruntime');
if (engine !== 'onnxruntime' && engine !== 'tfjs') {
  console.error(`--engine ${engine}: expected onnxruntime or tfjs`);
  process.exit(2);
}
const trials = Number(arg('trials', '1000'));
const every = Number(arg('every', '100'));
const heapAt = new Set(arg('heap-at', '').split(',').filter(Boolean).map(Number));
const heapDir = arg('heap-dir', '.');
const settleSeconds = Number(arg('settle', '0'));
const dir = mkdtempSync(join(tmpdir(), 'autoprune-soak-'));

const cfg = resolveConfig({
  name: 'soak',
  data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [28, 28, 1], classes: 10, train: 512, test: 64 } },
  model: { zoo: 'plain-cnn', width: 0.5, checkpoint: join(dir, 'base', 'model.json') },
  search: { controller: { name: 'random' }, targets: [0.3, 0.5, 0.7], window: 0.1, budget: { trials } },
  evaluation: { calibration: { batches: 2, batchSize: 32 }, validation: { limit: 128 }, finalists: { count: 0 }, latency: { batchSize: 8, runs: 1 } },
  run: { backend: 'wasm', store: join(dir, 'soak.db'), workers: 'inline', engine: { proxy: engine } },
});
/** As the search runs it (src/app/driver.ts): only inline tfjs computes on the driver's thread with one worker. */
const inlineTfjs = engine === 'tfjs';

interface Sample {
  trials: number;
  seconds: number;
  rssMb: number;
  heapMb: number;
  /** V8's heap as reserved from the OS (used or not), and memory outside it that JS objects own (ArrayBuffers, native buffers). */
  heapTotalMb: number;
  externalMb: number;
  /** tfjs only (the onnxruntime proxy makes no tensors). */
  tensors: number | null;
  tfBytes: number | null;
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
  if (settleSeconds > 0) await new Promise((r) => setTimeout(r, settleSeconds * 1000));
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
      heapTotalMb: m.heapTotal / 2 ** 20,
      externalMb: m.external / 2 ** 20,
      tensors: inlineTfjs ? t.numTensors : null,
      tfBytes: inlineTfjs ? t.numBytes : null,
      wasmMb: inlineTfjs ? wasmHeapMb() : null,
    });
    const s = samples.at(-1)!;
    const tfText = inlineTfjs ? `\twasm memory ${s.wasmMb?.toFixed(1) ?? '-'} MB\ttensors ${s.tensors} (${s.tfBytes} B)` : '';
    console.log(
      `${s.trials}\t${s.seconds.toFixed(0)} s\tRSS ${s.rssMb.toFixed(1)} MB\theap ${s.heapMb.toFixed(1)} MB (of ${s.heapTotalMb.toFixed(1)})\texternal ${s.externalMb.toFixed(1)} MB${tfText}`,
    );
  };
  const host = { splits, base };
  const summary = await runStudy({
    cfg,
    configHash: 'soak',
    store,
    analysis: analyzeModel(base),
    baseAccuracy: async () => ({
      proxy: await engineAccuracy(cfg, base, splits.validation, cfg.evaluation.validation.limit),
      test: await engineAccuracy(cfg, base, splits.test),
    }),
    evaluator: () => hostEvaluator(cfg, host, store, cfg.name),
    engineOnMainThread: inlineTfjs,
    localWorkers: inlineTfjs ? 1 : cfg.run.concurrency,
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
        if (heapAt.has(p.finished)) console.log(`heap snapshot: ${writeHeapSnapshot(join(heapDir, `soak-${engine}-${p.finished}.heapsnapshot`))}`);
      }
    },
  });
  console.log(`${engine}: ${summary.evaluated} evaluations, study ${summary.study.state} (${summary.reason}) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const out = arg('out', '');
  if (out) writeFileSync(out, JSON.stringify({ engine, trials, samples }, null, 2));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
