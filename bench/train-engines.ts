/**
 * Training img/s of ResNet-20 (width 1, 28x28x1, batch 64, SGD momentum) on every engine, side by
 * side in one run: libtorch through the binding (in this process), tfjs-wasm, and PyTorch itself
 * (bench/peer_train.py under /usr/bin/python3, Debian's python3-torch). Rounds alternate between
 * libtorch and PyTorch so that a change of the host's load hits both; the median round counts.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng.js';
import { toTensors } from '../src/data/tensors.js';
import type { Split } from '../src/data/types.js';
import { initBackend } from '../src/engine/backend.js';
import { torchStatus } from '../src/engine/torch.js';
import { TorchModel } from '../src/evaluators/torch-model.js';
import { lossFn } from '../src/evaluators/train.js';
import { makeTorchOptimizer, torchStep } from '../src/evaluators/train-torch.js';
import { buildZooModel } from '../src/model/zoo.js';
import { median, table } from './models.js';
import type { BenchSection } from './run.js';

const PYTHON = process.env.AUTOPRUNE_PEER_PYTHON ?? '/usr/bin/python3';
const PEER = fileURLToPath(new URL('./peer_train.py', import.meta.url));
const BATCH = 64;

function batch(): Split {
  const rng = new Rng(0);
  return {
    images: new Float32Array(BATCH * 784).map(() => rng.next()),
    labels: Uint8Array.from({ length: BATCH }, (_, i) => i % 10),
    count: BATCH,
    shape: [28, 28, 1],
  };
}

const OPTIONS = { epochs: 1, batchSize: BATCH, learningRate: 0.01, optimizer: 'sgd', momentum: 0.9, numClasses: 10, seed: 0 } as const;

function libtorchImgPerSec(steps: number, threads: number): number {
  const s = torchStatus();
  if (!s.loaded) return NaN;
  s.binding.setThreads(threads);
  const model = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 1 });
  const tm = TorchModel.fromLayersModel(s.binding, model);
  const opt = makeTorchOptimizer(s.binding, tm, OPTIONS);
  const b = batch();
  for (let i = 0; i < 5; i++) torchStep(tm, opt, b, 0.01);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) torchStep(tm, opt, b, 0.01);
  const ips = (steps * BATCH) / ((performance.now() - t0) / 1000);
  tm.dispose();
  model.dispose();
  return ips;
}

async function tfjsImgPerSec(backend: string, steps: number): Promise<number> {
  await initBackend(backend as 'wasm');
  const model = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 1 });
  const opt = tf.train.momentum(0.01, 0.9);
  const { xs, ys } = toTensors(batch(), 10);
  const step = () => tf.tidy(() => opt.minimize(() => lossFn(model, xs, ys, true), true)!.dataSync());
  step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const ips = (steps * BATCH) / ((performance.now() - t0) / 1000);
  tf.dispose([xs, ys]);
  opt.dispose();
  model.dispose();
  return ips;
}

async function pytorchImgPerSec(steps: number, threads: number): Promise<number> {
  if (!existsSync(PYTHON)) return NaN;
  try {
    const { stdout } = await promisify(execFile)(
      PYTHON,
      [PEER, '--width', '1', '--batch', String(BATCH), '--steps', String(steps), '--threads', String(threads)],
      {
        env: { ...process.env },
      },
    );
    return (JSON.parse(stdout.trim().split('\n').pop()!) as { imagesPerSecond: number }).imagesPerSecond;
  } catch {
    return NaN;
  }
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');

export const trainEnginesSection: BenchSection = {
  name: 'trainEngines',
  title: 'Training engines: ResNet-20 width 1, 28x28x1, batch 64, SGD momentum (img/s)',
  async run(ctx) {
    const threads = availableParallelism();
    const rounds = ctx.quick ? 1 : 3;
    const steps = ctx.quick ? 5 : 30;
    // Loading the binding sets OMP_WAIT_POLICY (see src/engine/torch.ts); the peer inherits it.
    const loaded = torchStatus();
    const lt: number[] = [];
    const pt: number[] = [];
    for (let r = 0; r < rounds; r++) {
      lt.push(libtorchImgPerSec(steps, threads));
      pt.push(await pytorchImgPerSec(steps, threads));
      ctx.log(`train engines round ${r + 1}/${rounds}: libtorch ${fmt(lt[r])}, PyTorch ${fmt(pt[r])} img/s`);
    }
    const wasm = await tfjsImgPerSec('wasm', ctx.quick ? 1 : 4);
    ctx.log(`train engines: tfjs-wasm ${fmt(wasm)} img/s`);
    const l = median(lt);
    const p = median(pt);
    const ratio = (v: number) => (Number.isFinite(v / p) ? (v / p).toFixed(3) : 'n/a');
    const rows = [
      ['libtorch (binding, in Node)', fmt(l), ratio(l)],
      ['tfjs-wasm', fmt(wasm), ratio(wasm)],
      ['PyTorch (peer_train.py)', fmt(p), ratio(p)],
    ];
    const markdown = [
      table(['engine', 'img/s (median of rounds)', '× PyTorch'], rows),
      '',
      `${threads} threads for libtorch and PyTorch (OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? 'unset'} for both), ${rounds} alternating round(s) of ${steps} steps after 5 warm-up steps; ` +
        `per round libtorch ${lt.map(fmt).join(', ')}, PyTorch ${pt.map(fmt).join(', ')}. ` +
        (loaded.loaded ? `libtorch ${loaded.binding.version}.` : `libtorch not loaded: ${loaded.reason}.`),
    ].join('\n');
    return { markdown, data: { threads, rounds, steps, libtorch: lt, pytorch: pt, wasm, ratio: l / p }, failures: [] };
  },
};
