/**
 * The onnxruntime proxy before and after candidates were cut from the base model's graph (src/model/ir)
 * instead of a tfjs-layers model per trial, interleaved in one process with PyTorch beside them.
 *
 *   node --import tsx bench/proxy-ab.ts --previous <checkout of the previous tree> [--rounds 5] [--json out.json]
 *
 * The OnnxEvaluator (and its config resolver) is imported from `--previous`/src and from this
 * tree's src; both run on the same tfjs and onnxruntime-node modules (node_modules resolves to the
 * same files). Same base model (zoo resnet-20 width 1, seed 0, 28x28x1, 10 classes), the same
 * candidates pinned as bench/proxy-engines.ts pins them (uniform keep ratio nearest 48% MACs at
 * channel step 1 and 8, l1), the same synthetic splits; BN calibration on 10 batches of 128 (the
 * default of `evaluation.calibration`), top-1 on 5,000 validation images, latency 3 runs at batch 32.
 * After one warm-up evaluation each, every round runs one evaluation of: previous, current, PyTorch
 * (bench/peer_proxy.py, /usr/bin/python3, 2 threads), so all three see the same minutes of host load.
 * Old and new must give the same accuracy for the same candidate (within 1e-6): exit 1 otherwise.
 * The untrained base predicts one class for every image, so both score 10.00% on the balanced
 * split and this check only catches gross failures; that the two cuts give the same proxy accuracy
 * and BN statistics on zoo models with randomised BN weights is asserted by test/ir-proxy.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type * as configModule from '../src/config/index.js';
import { initBackend } from '../src/engine/backend.js';
import type * as ortModule from '../src/engine/onnxruntime.js';
import type * as onnxModule from '../src/evaluators/onnx.js';
import { loadSplits } from '../src/evaluators/setup.js';
import type { Evaluator } from '../src/evaluators/types.js';
import { analyzeModel } from '../src/model/analysis.js';
import { buildZooModel } from '../src/model/zoo.js';
import { type Pinned, type Protocol, pin, TorchPeer } from './proxy-engines.js';

const { values: args } = parseArgs({
  options: { previous: { type: 'string' }, rounds: { type: 'string', default: '5' }, json: { type: 'string' } },
});
if (!args.previous) {
  console.error('--previous <dir>: expected the checkout of the previous tree (its src/evaluators/onnx.ts is imported)');
  process.exit(2);
}
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 3) {
  console.error(`--rounds ${args.rounds}: expected an integer >= 3`);
  process.exit(2);
}
const PROTOCOL: Protocol = { calibration: { batches: 10, batchSize: 128 }, validation: 5000 };
const STEPS = [1, 8];

interface Tree {
  readonly name: string;
  readonly resolveConfig: typeof configModule.resolveConfig;
  readonly OnnxEvaluator: typeof onnxModule.OnnxEvaluator;
  readonly loadOnnxRuntime: typeof ortModule.loadOnnxRuntime;
}

async function importTree(name: string, root: string): Promise<Tree> {
  const at = (p: string) => pathToFileURL(join(root, 'src', p)).href;
  const config = (await import(at('config/index.ts'))) as typeof configModule;
  const onnx = (await import(at('evaluators/onnx.ts'))) as typeof onnxModule;
  const ort = (await import(at('engine/onnxruntime.ts'))) as typeof ortModule;
  return { name, resolveConfig: config.resolveConfig, OnnxEvaluator: onnx.OnnxEvaluator, loadOnnxRuntime: ort.loadOnnxRuntime };
}

function userConfig(dir: string) {
  return {
    name: 'bench-proxy-ab',
    data: {
      dataset: 'synthetic',
      validationSize: PROTOCOL.validation,
      synthetic: { shape: [28, 28, 1], classes: 10, train: PROTOCOL.validation + PROTOCOL.calibration.batches * PROTOCOL.calibration.batchSize, test: 10 },
    },
    model: { zoo: 'resnet-20', width: 1, checkpoint: join(dir, 'base', 'model.json') },
    evaluation: { importance: 'l1', calibration: PROTOCOL.calibration, validation: { limit: PROTOCOL.validation }, latency: { batchSize: 32, runs: 3 } },
    run: { backend: 'wasm', store: join(dir, 'unused.db'), concurrency: 1 },
  };
}

interface Timed {
  readonly seconds: number;
  readonly accuracy: number | null;
  readonly phases: Record<string, number>;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function timeEval(ev: Evaluator, p: Pinned, trial: number): Promise<Timed> {
  const t0 = performance.now();
  const r = await ev.evaluate({ trial, candidate: p.candidate, stage: 'proxy' });
  return { seconds: (performance.now() - t0) / 1000, accuracy: r.proxyAccuracy ?? null, phases: r.timings };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-bench-ab-'));
  const load0 = loadavg();
  const failures: string[] = [];
  try {
    await initBackend('wasm');
    const previous = await importTree('previous', resolve(args.previous!));
    const current = await importTree('graph', resolve(import.meta.dirname, '..'));
    for (const t of [previous, current]) if (!(await t.loadOnnxRuntime())) throw new Error(`onnxruntime-node did not load (${t.name})`);
    const base = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 1, seed: 0 });
    const a = analyzeModel(base);
    const pinned: Pinned[] = [];
    for (const s of STEPS) pinned.push(await pin(base, a, s));
    const cfgNew = current.resolveConfig(userConfig(dir));
    const cfgOld = previous.resolveConfig(userConfig(dir));
    const splits = await loadSplits(cfgNew);
    const noFinetune = () => Promise.reject(new Error('no finetune stage in this bench'));
    const evaluators = {
      previous: previous.OnnxEvaluator.create(cfgOld as never, { base, splits, finetuner: noFinetune }),
      graph: current.OnnxEvaluator.create(cfgNew, { base, splits, finetuner: noFinetune }),
    };
    const rows: { step: number; engine: string; times: Timed[] }[] = [];
    for (const p of pinned) {
      console.error(`step ${p.step}: channels ${p.candidate.channels.join(',')} (${(100 * p.macsFraction).toFixed(1)}% MACs)`);
      const torch = await TorchPeer.start(p, PROTOCOL);
      if (!(torch instanceof TorchPeer)) failures.push(`PyTorch skipped: ${torch.skipped}`);
      const times: Record<string, Timed[]> = { previous: [], graph: [], torch: [] };
      // Warm-up: the graph import and session set-up of the first evaluation are not timed.
      await timeEval(evaluators.previous, p, 0);
      await timeEval(evaluators.graph, p, 0);
      for (let r = 0; r < rounds; r++) {
        times.previous.push(await timeEval(evaluators.previous, p, 0));
        times.graph.push(await timeEval(evaluators.graph, p, 0));
        if (torch instanceof TorchPeer) {
          const t = await torch.evaluate();
          times.torch.push({ seconds: t.total, accuracy: null, phases: t });
        }
        console.error(
          `  round ${r + 1}: previous ${times.previous.at(-1)!.seconds.toFixed(2)} s, graph ${times.graph.at(-1)!.seconds.toFixed(2)} s, PyTorch ${times.torch.at(-1)?.seconds.toFixed(2) ?? '-'} s`,
        );
      }
      if (torch instanceof TorchPeer) torch.close();
      const accs = [...times.previous, ...times.graph].map((t) => t.accuracy!);
      const spread = Math.max(...accs) - Math.min(...accs);
      if (!(spread <= 1e-6))
        failures.push(`step ${p.step}: accuracies differ by ${spread} (previous ${times.previous[0].accuracy}, graph ${times.graph[0].accuracy})`);
      for (const [engine, ts] of Object.entries(times)) if (ts.length) rows.push({ step: p.step, engine, times: ts });
    }
    base.dispose();
    const load1 = loadavg();
    const names: Record<string, string> = {
      previous: 'onnxruntime, previous (tfjs-layers model per trial)',
      graph: 'onnxruntime, graph cut',
      torch: 'PyTorch (bench/peer_proxy.py)',
    };
    const phaseKeys = ['prune', 'export', 'session', 'calibrate', 'evaluate'];
    const lines = [
      `load average (1/5/15 min) at start ${load0.map((x) => x.toFixed(2)).join(' / ')}, at end ${load1.map((x) => x.toFixed(2)).join(' / ')}; ${rounds} rounds`,
      '',
      '| channel step | channels per group | MACs | engine | seconds per evaluation: median (min–max) | evaluations/min (median) | graph / previous time | accuracy | median seconds: prune, export, session, calibrate, evaluate |',
      '|---|---|---|---|---|---|---|---|---|',
    ];
    for (const row of rows) {
      const p = pinned.find((x) => x.step === row.step)!;
      const secs = row.times.map((t) => t.seconds);
      const med = median(secs);
      const prev = rows.find((x) => x.step === row.step && x.engine === 'previous')!;
      const ratio = row.engine === 'graph' ? (med / median(prev.times.map((t) => t.seconds))).toFixed(3) : '';
      const phases =
        row.engine === 'torch'
          ? `build ${median(row.times.map((t) => t.phases.build)).toFixed(3)}, calibrate ${median(row.times.map((t) => t.phases.calibrate)).toFixed(3)}, evaluate ${median(row.times.map((t) => t.phases.evaluate)).toFixed(3)}`
          : phaseKeys.map((k) => median(row.times.map((t) => t.phases[k] ?? 0)).toFixed(3)).join(', ');
      lines.push(
        `| ${row.step} | ${p.candidate.channels.join(',')} | ${p.mmacs.toFixed(2)} M (${(100 * p.macsFraction).toFixed(1)}%) | ${names[row.engine]} | ${med.toFixed(3)} (${Math.min(...secs).toFixed(3)}–${Math.max(...secs).toFixed(3)}) | ${(60 / med).toFixed(1)} | ${ratio} | ${row.times[0].accuracy?.toFixed(6) ?? '–'} | ${phases} |`,
      );
    }
    console.log(lines.join('\n'));
    for (const f of failures) console.log(`FAILURE: ${f}`);
    if (args.json) writeFileSync(args.json, JSON.stringify({ protocol: PROTOCOL, rounds, load: { start: load0, end: load1 }, pinned, rows }, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (failures.some((f) => !f.startsWith('PyTorch skipped'))) process.exitCode = 1;
}

await main();
