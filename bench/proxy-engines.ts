/**
 * The adaptive-BN proxy protocol side by side on onnxruntime, tfjs-wasm and PyTorch CPU:
 * ResNet-20 width 1 on 28x28x1 / 10 classes, a candidate pinned near 48% of the MACs, BN
 * calibration on 50 batches of 128 training images, top-1 on 5,000 validation images.
 *
 * The candidate is the uniform keep ratio (searched in steps of 0.005) whose MACs come closest to
 * 48% after rounding to the channel step; the base model is the zoo's resnet-20 with seed 0 and
 * importance l1. Its channels are printed. Data are synthetic (seed 0): speed does not depend on them.
 * - onnxruntime: the search's own OnnxEvaluator, one evaluation at a time, every core as intra-op threads.
 * - tfjs-wasm: the search's worker pool with 2 workers (wasm runs single-threaded per worker).
 * - PyTorch: bench/peer_proxy.py with /usr/bin/python3 (Debian's python3-torch), 2 threads,
 *   OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep, as onnxruntime's do with spinning off: on a
 *   shared host, spinning threads wait for descheduled peers); skipped with a message when torch
 *   is not there. Its evaluations interleave with the other engines' so both see the same load.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type * as tf from '@tensorflow/tfjs';
import { type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { type Candidate, candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { loadOnnxRuntime, nchwcBlock } from '../src/engine/onnxruntime.js';
import { OnnxEvaluator } from '../src/evaluators/onnx.js';
import { WorkerPool } from '../src/evaluators/pool.js';
import { loadSplits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import type { Evaluator } from '../src/evaluators/types.js';
import { type Analysis, analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { pruneModel } from '../src/model/prune.js';
import { buildZooModel } from '../src/model/zoo.js';
import type { BenchSection } from './run.js';

const PYTHON = '/usr/bin/python3';
const TARGET = 0.48;
const PROTOCOL = { calibration: { batches: 50, batchSize: 128 }, validation: 5000 } as const;
/** BN calibration batches x images, and validation images, of one proxy evaluation. */
export interface Protocol {
  readonly calibration: { readonly batches: number; readonly batchSize: number };
  readonly validation: number;
}

export interface Pinned {
  readonly step: number;
  readonly candidate: Candidate;
  readonly ratio: number;
  readonly macsFraction: number;
  readonly mmacs: number;
  /** Output channels of every conv of the pruned model (for the PyTorch peer). */
  readonly widths: Record<string, number>;
}

/** Whether padding to `block` changes a pinned candidate's graph (a conv width >= block, not a multiple). */
function padChanges(p: Pinned, block: number): boolean {
  return block > 1 && Object.values(p.widths).some((w) => w >= block && w % block !== 0);
}

export async function pin(base: tf.LayersModel, a: Analysis, step: number): Promise<Pinned> {
  const full = costOf(a, null).macs;
  const space = { groups: a.groups, options: { minKeepRatio: 0.05, channelStep: step, skip: [] } };
  let best: { c: Candidate; f: number; r: number } | null = null;
  for (let k = 60; k <= 200; k++) {
    const r = k / 200;
    const c = candidateFromRatios(
      space,
      a.groups.map(() => r),
    );
    const f = costOf(a, c).macs / full;
    if (!best || Math.abs(f - TARGET) < Math.abs(best.f - TARGET)) best = { c, f, r };
  }
  const { model } = await pruneModel(base, a, best!.c, 'l1');
  const widths = Object.fromEntries(
    model.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => [l.name, (l.getConfig() as { filters: number }).filters]),
  );
  model.dispose();
  return { step, candidate: best!.c, ratio: best!.r, macsFraction: best!.f, mmacs: (best!.f * full) / 1e6, widths };
}

interface EngineRun {
  readonly engine: string;
  readonly step: number;
  readonly evalsPerMin: number | null;
  /** PyTorch's rate in the evaluations interleaved with this engine's (same minutes of host load). */
  readonly torchPerMin: number | null;
  /** Mean seconds per phase of one evaluation. */
  readonly phases: Record<string, number>;
  readonly torchPhases: Record<string, number>;
  readonly note?: string;
}

function mean(rows: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) sum[k] = (sum[k] ?? 0) + v;
  return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, v / Math.max(1, rows.length)]));
}

/** bench/peer_proxy.py as a server: one evaluation per request, so its runs interleave with ours. */
export class TorchPeer {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(l);
      } else this.lines.push(l);
    });
    child.on('exit', () => this.waiting?.('{"skipped": "the PyTorch peer exited"}'));
  }
  private next(): Promise<string> {
    const l = this.lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((r) => (this.waiting = r));
  }
  static async start(p: Pinned, protocol: Protocol = PROTOCOL): Promise<TorchPeer | { skipped: string }> {
    if (!existsSync(PYTHON)) return { skipped: `${PYTHON} not found` };
    const spec = {
      widths: p.widths,
      calibration: [protocol.calibration.batches, protocol.calibration.batchSize],
      validation: protocol.validation,
      eval_batch: 500,
      threads: 2,
    };
    const child = spawn(PYTHON, [join(import.meta.dirname, 'peer_proxy.py'), JSON.stringify(spec)], {
      env: { ...process.env, OMP_NUM_THREADS: '2', OMP_WAIT_POLICY: 'PASSIVE' },
    });
    const peer = new TorchPeer(child);
    const first = JSON.parse(await peer.next()) as { skipped?: string; torch?: string };
    if (first.skipped) return { skipped: first.skipped };
    peer.version = first.torch ?? '?';
    return peer;
  }
  version = '?';
  async evaluate(): Promise<Record<string, number>> {
    this.child.stdin.write('run\n');
    return JSON.parse(await this.next()) as Record<string, number>;
  }
  close(): void {
    this.child.stdin.end();
  }
}

/**
 * `rounds` rounds of: one round of the engine (`round()` returns its evaluations' timings and how
 * many it ran), then one PyTorch evaluation. Rates are evaluations per wall-clock minute.
 */
async function interleaved(
  engine: string,
  step: number,
  rounds: number,
  round: () => Promise<{ timings: Record<string, number>[]; seconds: number }>,
  torch: TorchPeer | { skipped: string },
): Promise<EngineRun> {
  await round(); // warm-up
  const ours: Record<string, number>[] = [];
  const theirs: Record<string, number>[] = [];
  let seconds = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await round();
    ours.push(...r.timings);
    seconds += r.seconds;
    if (torch instanceof TorchPeer) theirs.push(await torch.evaluate());
  }
  const torchSeconds = theirs.reduce((a, t) => a + t.total, 0);
  return {
    engine,
    step,
    evalsPerMin: (60 * ours.length) / seconds,
    torchPerMin: theirs.length ? (60 * theirs.length) / torchSeconds : null,
    phases: mean(ours),
    torchPhases: mean(theirs),
    note: torch instanceof TorchPeer ? undefined : `PyTorch skipped: ${torch.skipped}`,
  };
}

async function evaluations(ev: Evaluator, candidate: Candidate, parallel: number): Promise<{ timings: Record<string, number>[]; seconds: number }> {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: parallel }, (_, i) => ev.evaluate({ trial: i, candidate, stage: 'proxy' })));
  return { timings: rs.map((r) => r.timings), seconds: (performance.now() - t0) / 1000 };
}

function config(dir: string, extra: { concurrency: number }): ResolvedConfig {
  return resolveConfig({
    name: 'bench-engines',
    data: {
      dataset: 'synthetic',
      validationSize: PROTOCOL.validation,
      synthetic: { shape: [28, 28, 1], classes: 10, train: PROTOCOL.validation + PROTOCOL.calibration.batches * PROTOCOL.calibration.batchSize, test: 10 },
    },
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
      const rounds = ctx.quick ? 2 : 4;
      const cfg1 = config(dir, { concurrency: 1 });
      const splits = await loadSplits(cfg1);
      const ortLoaded = await loadOnnxRuntime();
      for (const p of pinned) {
        ctx.log(`step ${p.step}: channels ${p.candidate.channels.join(',')} (${(100 * p.macsFraction).toFixed(1)}% MACs)`);
        const torch = await TorchPeer.start(p);
        const torchName = torch instanceof TorchPeer ? `PyTorch ${torch.version}` : 'PyTorch';
        if (ortLoaded) {
          const baseModel = await loadModel(cfg1.model.checkpoint!);
          // With the conv widths padded to the NCHWc block (what the search does) and, where that
          // changes the graph, without: the padding's effect measured in the same run.
          const blocks = [nchwcBlock(), ...(padChanges(p, nchwcBlock()) ? [1] : [])];
          for (const channelBlock of blocks) {
            const ev = OnnxEvaluator.create(cfg1, { base: baseModel, splits, finetuner: () => TfjsEvaluator.create(cfg1, { splits }), channelBlock });
            const how = channelBlock > 1 ? `widths padded to ${channelBlock}` : 'no padding';
            runs.push(
              await interleaved(
                `onnxruntime (1 evaluation at a time, ${availableParallelism()} threads, ${how})`,
                p.step,
                rounds,
                () => evaluations(ev, p.candidate, 1),
                torch,
              ),
            );
            await ev.close();
            ctx.log(`  onnxruntime, ${how}: ${fmt(runs.at(-1)!.evalsPerMin)} evals/min; ${torchName} interleaved: ${fmt(runs.at(-1)!.torchPerMin)}`);
          }
          baseModel.dispose();
        } else {
          runs.push({
            engine: 'onnxruntime',
            step: p.step,
            evalsPerMin: null,
            torchPerMin: null,
            phases: {},
            torchPhases: {},
            note: 'onnxruntime-node did not load',
          });
        }
        if (p.step === 1) {
          const pool = await WorkerPool.create(config(dir, { concurrency: 2 }), 2, { splits });
          runs.push(await interleaved('tfjs-wasm (2 workers)', p.step, ctx.quick ? 1 : 2, () => evaluations(pool, p.candidate, 2), torch));
          await pool.close();
          ctx.log(`  tfjs-wasm: ${fmt(runs.at(-1)!.evalsPerMin)} evals/min; ${torchName} interleaved: ${fmt(runs.at(-1)!.torchPerMin)}`);
        }
        if (torch instanceof TorchPeer) torch.close();
      }
      const ratio = (r: EngineRun) => (r.evalsPerMin !== null && r.torchPerMin ? `${(r.evalsPerMin / r.torchPerMin).toFixed(2)}×` : '-');
      const phaseText = (ph: Record<string, number>) =>
        Object.entries(ph)
          .filter(([k]) => k !== 'total')
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ');
      const markdown = [
        '| channel step | channels per group | MACs | engine | evaluations/min | PyTorch evaluations/min (interleaved) | ratio | seconds per phase (mean of one evaluation) | PyTorch seconds per phase |',
        '|---|---|---|---|---|---|---|---|---|',
        ...runs.map((r) => {
          const p = pinned.find((x) => x.step === r.step)!;
          return `| ${r.step} | ${p.candidate.channels.join(',')} | ${fmt(p.mmacs, 2)} M (${(100 * p.macsFraction).toFixed(1)}%) | ${r.engine} | ${fmt(r.evalsPerMin)}${r.note ? ` (${r.note})` : ''} | ${fmt(r.torchPerMin)} | ${ratio(r)} | ${phaseText(r.phases)} | ${phaseText(r.torchPhases)} |`;
        }),
        '',
        `Protocol: base = zoo resnet-20 width 1, seed 0, 28x28x1, 10 classes; channels chosen by l1; candidate = the uniform keep ratio nearest ${TARGET * 100}% MACs after rounding to the step; ` +
          `${PROTOCOL.calibration.batches}x${PROTOCOL.calibration.batchSize} calibration images, ${PROTOCOL.validation} validation images, synthetic data. ` +
          `Each engine runs ${rounds} timed rounds after a warm-up round, and after each of its rounds the PyTorch peer (bench/peer_proxy.py, 2 threads, a persistent process) runs one evaluation, so both rates come from the same minutes of host load. ` +
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
