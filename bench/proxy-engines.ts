/**
 * The adaptive-BN proxy protocol side by side on onnxruntime, tfjs-wasm and PyTorch CPU (issue 8):
 * ResNet-20 width 1 on 28x28x1 / 10 classes, a candidate pinned near 48% of the MACs, BN
 * calibration on 50 batches of 128 training images, top-1 on 5,000 validation images.
 *
 * The candidate is the uniform keep ratio (searched in steps of 0.005) whose MACs come closest to
 * 48% after rounding to the channel step; the base model is the zoo's resnet-20 with seed 0 and
 * importance l1. Its channels are printed. Data are synthetic (seed 0): speed does not depend on them.
 * - onnxruntime: the search's own OnnxEvaluator, one evaluation at a time, 2 intra-op threads.
 * - tfjs-wasm: the search's worker pool with 2 workers (wasm runs single-threaded per worker).
 * - PyTorch: bench/peer_proxy.py with /usr/bin/python3 (Debian's python3-torch), 2 threads;
 *   skipped with a message when torch is not there.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { resolveConfig, type ResolvedConfig } from '../src/config/index.js';
import { type Candidate, candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { loadOnnxRuntime } from '../src/engine/onnxruntime.js';
import { OnnxEvaluator } from '../src/evaluators/onnx.js';
import { WorkerPool } from '../src/evaluators/pool.js';
import { loadSplits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import type { EvalResult, Evaluator } from '../src/evaluators/types.js';
import { type Analysis, analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { pruneModel } from '../src/model/prune.js';
import { buildZooModel } from '../src/model/zoo.js';
import type { BenchSection } from './run.js';

const PYTHON = '/usr/bin/python3';
const TARGET = 0.48;
const PROTOCOL = { calibration: { batches: 50, batchSize: 128 }, validation: 5000 } as const;

interface Pinned {
  readonly step: number;
  readonly candidate: Candidate;
  readonly ratio: number;
  readonly macsFraction: number;
  readonly mmacs: number;
  /** Output channels of every conv of the pruned model (for the PyTorch peer). */
  readonly widths: Record<string, number>;
}

async function pin(base: tf.LayersModel, a: Analysis, step: number): Promise<Pinned> {
  const full = costOf(a, null).macs;
  const space = { groups: a.groups, options: { minKeepRatio: 0.05, channelStep: step, skip: [] } };
  let best: { c: Candidate; f: number; r: number } | null = null;
  for (let r = 0.3; r <= 1.0001; r += 0.005) {
    const c = candidateFromRatios(space, a.groups.map(() => r));
    const f = costOf(a, c).macs / full;
    if (!best || Math.abs(f - TARGET) < Math.abs(best.f - TARGET)) best = { c, f, r };
  }
  const { model } = await pruneModel(base, a, best!.c, 'l1');
  const widths = Object.fromEntries(model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => [l.name, (l.getConfig() as { filters: number }).filters]));
  model.dispose();
  return { step, candidate: best!.c, ratio: best!.r, macsFraction: best!.f, mmacs: (best!.f * full) / 1e6, widths };
}

interface EngineRun {
  readonly engine: string;
  readonly step: number;
  readonly evalsPerMin: number | null;
  /** Mean seconds per phase of one evaluation. */
  readonly phases: Record<string, number>;
  readonly note?: string;
}

function meanPhases(results: readonly EvalResult[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.timings)) sum[k] = (sum[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v / results.length]));
}

async function timed(ev: Evaluator, candidate: Candidate, count: number, parallel: number): Promise<{ perMin: number; results: EvalResult[] }> {
  await ev.evaluate({ trial: 1000, candidate, stage: 'proxy' }); // warm-up
  const t0 = performance.now();
  const results: EvalResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) results.push(await ev.evaluate({ trial: next++, candidate, stage: 'proxy' }));
    }),
  );
  return { perMin: (60 * count) / ((performance.now() - t0) / 1000), results };
}

function pytorch(p: Pinned, evals: number): EngineRun {
  if (!existsSync(PYTHON)) return { engine: 'pytorch', step: p.step, evalsPerMin: null, phases: {}, note: `${PYTHON} not found` };
  const spec = { widths: p.widths, evals, calibration: [PROTOCOL.calibration.batches, PROTOCOL.calibration.batchSize], validation: PROTOCOL.validation, eval_batch: 500, threads: 2 };
  const out = execFileSync(PYTHON, [join(import.meta.dirname, 'peer_proxy.py'), JSON.stringify(spec)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as { skipped?: string; evalsPerMin?: number; seconds?: Record<string, number>; torch?: string };
  if (r.skipped) return { engine: 'pytorch', step: p.step, evalsPerMin: null, phases: {}, note: r.skipped };
  return { engine: `pytorch ${r.torch}`, step: p.step, evalsPerMin: r.evalsPerMin!, phases: r.seconds! };
}

function config(dir: string, extra: { concurrency: number }): ResolvedConfig {
  return resolveConfig({
    name: 'bench-engines',
    data: { dataset: 'synthetic', validationSize: PROTOCOL.validation, synthetic: { shape: [28, 28, 1], classes: 10, train: PROTOCOL.validation + PROTOCOL.calibration.batches * PROTOCOL.calibration.batchSize, test: 10 } },
    model: { zoo: 'resnet-20', width: 1, checkpoint: join(dir, 'base', 'model.json') },
    evaluation: { importance: 'l1', calibration: PROTOCOL.calibration, validation: { limit: PROTOCOL.validation }, latency: { batchSize: 32, runs: 3 } },
    run: { backend: 'wasm', store: join(dir, 'unused.db'), concurrency: extra.concurrency },
  });
}

const fmt = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));

export const proxyEnginesSection: BenchSection = {
  name: 'proxy-engines',
  title: 'Adaptive-BN proxy side by side: onnxruntime, tfjs-wasm, PyTorch (ResNet-20 w1, ~48% MACs, 50x128 calibration, 5,000 validation)',
  async run(ctx) {
    const dir = await mkdtemp(join(tmpdir(), 'autoprune-bench-engines-'));
    const failures: string[] = [];
    const runs: EngineRun[] = [];
    try {
      await initBackend('wasm');
      const base = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 1, seed: 0 });
      await saveModel(base, join(dir, 'base'));
      const a = analyzeModel(base);
      const steps = ctx.quick ? [1, 8] : [1, 8, 16];
      const pinned: Pinned[] = [];
      for (const s of steps) pinned.push(await pin(base, a, s));
      base.dispose();
      const evals = ctx.quick ? 2 : 4;
      const cfg1 = config(dir, { concurrency: 1 });
      const splits = await loadSplits(cfg1);
      const ortLoaded = await loadOnnxRuntime();
      for (const p of pinned) {
        ctx.log(`step ${p.step}: channels ${p.candidate.channels.join(',')} (${(100 * p.macsFraction).toFixed(1)}% MACs)`);
        if (ortLoaded) {
          const baseModel = await loadModel(cfg1.model.checkpoint!);
          const ev = OnnxEvaluator.create(cfg1, { base: baseModel, splits, finetuner: () => TfjsEvaluator.create(cfg1, { splits }) });
          const r = await timed(ev, p.candidate, evals, 1);
          await ev.close();
          baseModel.dispose();
          runs.push({ engine: `onnxruntime (1 evaluation at a time, ${availableParallelism()} threads)`, step: p.step, evalsPerMin: r.perMin, phases: meanPhases(r.results) });
        } else {
          runs.push({ engine: 'onnxruntime', step: p.step, evalsPerMin: null, phases: {}, note: 'onnxruntime-node did not load' });
        }
        ctx.log(`  onnxruntime: ${fmt(runs.at(-1)!.evalsPerMin)} evals/min`);
        if (p.step === 1) {
          const pool = await WorkerPool.create(config(dir, { concurrency: 2 }), 2, { splits });
          const r = await timed(pool, p.candidate, ctx.quick ? 2 : 4, 2);
          await pool.close();
          runs.push({ engine: 'tfjs-wasm (2 workers)', step: p.step, evalsPerMin: r.perMin, phases: meanPhases(r.results) });
          ctx.log(`  tfjs-wasm: ${fmt(r.perMin)} evals/min`);
        }
        runs.push(pytorch(p, evals));
        ctx.log(`  pytorch: ${fmt(runs.at(-1)!.evalsPerMin)} evals/min ${runs.at(-1)!.note ?? ''}`);
      }
      const torchOf = (step: number) => runs.find((r) => r.step === step && r.engine.startsWith('pytorch'))?.evalsPerMin ?? null;
      const ratio = (r: EngineRun) => {
        const t = torchOf(r.step);
        return r.evalsPerMin !== null && t ? `${(r.evalsPerMin / t).toFixed(2)}×` : '-';
      };
      const phaseText = (ph: Record<string, number>) =>
        Object.entries(ph)
          .filter(([k]) => k !== 'total')
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ');
      const markdown = [
        '| channel step | channels per group | MACs | engine | evaluations/min | vs PyTorch | seconds per phase (mean of one evaluation) |',
        '|---|---|---|---|---|---|---|',
        ...runs.map((r) => {
          const p = pinned.find((x) => x.step === r.step)!;
          return `| ${r.step} | ${p.candidate.channels.join(',')} | ${fmt(p.mmacs, 2)} M (${(100 * p.macsFraction).toFixed(1)}%) | ${r.engine} | ${fmt(r.evalsPerMin)}${r.note ? ` (${r.note})` : ''} | ${ratio(r)} | ${phaseText(r.phases)} |`;
        }),
        '',
        `Protocol: base = zoo resnet-20 width 1, seed 0, 28x28x1, 10 classes; channels chosen by l1; candidate = the uniform keep ratio nearest ${TARGET * 100}% MACs after rounding to the step; ` +
          `${PROTOCOL.calibration.batches}x${PROTOCOL.calibration.batchSize} calibration images, ${PROTOCOL.validation} validation images, synthetic data; ${evals} timed evaluations after one warm-up per engine and step. ` +
          'onnxruntime phases: prune (tfjs l1 cut + ONNX export), export (protobuf encoding), session (creation + release of the calibration and evaluation sessions), calibrate, evaluate, latency@onnxruntime. ' +
          'PyTorch phases: build (the pruned module), calibrate, evaluate.',
      ].join('\n');
      for (const r of runs) if (r.evalsPerMin !== null && !Number.isFinite(r.evalsPerMin)) failures.push(`${r.engine} step ${r.step}: no rate`);
      return { markdown, data: { pinned, runs }, failures };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
