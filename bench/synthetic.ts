/**
 * `npm run bench:synthetic [-- --seeds 5 --budget 400 --hidden 32 --batch 64]`
 *
 * Runs each controller on the synthetic problem of bench/synthetic-problem.ts (ResNet-20 topology,
 * analytic accuracy surrogate, exact Pareto front known) with the same trial budget, over several
 * seeds, and prints a Markdown table: hypervolume as a fraction of the exact front's, and the best
 * accuracy at each FLOPs target (MACs <= target + window) against the exact optimum. Exit code 1
 * when greedy, evolutionary or rl does not beat random on the median of every measure.
 * Proposals are asked 4 at a time (several in flight) and told right away.
 */
import { parseArgs } from 'node:util';
import type { ControllerInput as ControllerSpec } from '../src/config/index.js';
import { createController } from '../src/controllers/registry.js';
import type { ControllerContext, Observation } from '../src/controllers/types.js';
import { hypervolume2d } from '../src/core/pareto.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios, candidateKey } from '../src/core/space.js';
import type { Json } from '../src/store/types.js';
import { exactFront, type FrontPoint, makeProblem, type Problem } from './synthetic-problem.js';

const TARGETS = [0.5, 0.3];
const WINDOW = 0.03;
const IN_FLIGHT = 4;

interface RunResult {
  readonly hv: number;
  readonly best: number[];
  readonly trials: number;
}

function run(problem: Problem, spec: ControllerSpec, seed: number, budget: number): RunResult {
  const ctx: ControllerContext = { ...problem, targets: TARGETS, window: WINDOW, rng: new Rng(seed) };
  const c = createController(spec, ctx);
  const seen = new Map<string, Observation>();
  let trials = 0;
  while (trials < budget && !c.done()) {
    const ps = c.ask(Math.min(IN_FLIGHT, budget - trials));
    if (ps.length === 0) break;
    const obs = ps.map((p): Observation => {
      const key = candidateKey(p.candidate);
      const known = seen.get(key); // the study's memo: an identical candidate is evaluated once
      if (known) return { ...known, meta: p.meta as Json };
      trials++;
      const o = { candidate: p.candidate, cost: problem.costOf(p.candidate), meta: p.meta as Json, proxyAccuracy: problem.accuracy(p.candidate) };
      seen.set(key, o);
      return o;
    });
    c.tell(obs);
  }
  const points = [...seen.values()].map((o) => ({ cost: o.cost.macs / problem.baseCost.macs, value: o.proxyAccuracy! }));
  return { hv: hypervolume2d(points, ref(problem)), best: TARGETS.map((t) => bestAt(points, t)), trials };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function bestAt(points: readonly FrontPoint[], target: number): number {
  return Math.max(-Infinity, ...points.filter((q) => q.cost <= target + WINDOW + 1e-12).map((q) => q.value));
}

/** Reference point: the largest target's window edge, and the accuracy of the all-minimum candidate. */
function ref(p: Problem): FrontPoint {
  const cheapest = candidateFromRatios(
    p.space,
    p.space.groups.map(() => p.space.options.minKeepRatio),
  );
  return { cost: Math.max(...TARGETS) + WINDOW, value: p.accuracy(cheapest) };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '5' },
      budget: { type: 'string', default: '400' },
      hidden: { type: 'string', default: '32' },
      batch: { type: 'string', default: '64' },
    },
  });
  const seeds = Number(values.seeds);
  const budget = Number(values.budget);
  const problem = makeProblem();
  const started = Date.now();
  const front = exactFront(problem);
  const optimum = { hv: hypervolume2d(front, ref(problem)), best: TARGETS.map((t) => bestAt(front, t)) };
  process.stderr.write(`exact front: ${front.length} points in ${Date.now() - started} ms\n`);
  const specs: ControllerSpec[] = [
    { name: 'uniform' },
    { name: 'random' },
    // NetAdapt's schedule scaled to the budget: ~28 iterations of 12 candidates reach 0.3.
    { name: 'greedy', initialReduction: 0.025, decay: 0.98 },
    { name: 'evolutionary' },
    // AMC's settings (100 warm-up + 300 episodes, batch 64) except the network width (300 in AMC), for run time.
    { name: 'rl', hidden: Number(values.hidden), batchSize: Number(values.batch) },
  ];
  const rows: { name: string; hv: number; best: number[]; trials: number; seconds: number }[] = [];
  for (const spec of specs) {
    const t0 = Date.now();
    const runs = Array.from({ length: seeds }, (_, i) => run(problem, spec, i + 1, budget));
    const seconds = (Date.now() - t0) / 1000;
    rows.push({
      name: spec.name,
      hv: median(runs.map((r) => r.hv / optimum.hv)),
      best: TARGETS.map((_, k) => median(runs.map((r) => r.best[k]))),
      trials: median(runs.map((r) => r.trials)),
      seconds,
    });
    const perSeed = runs.map((r) => `${(100 * (r.hv / optimum.hv)).toFixed(1)}/${r.best.map((b) => (100 * b).toFixed(2)).join('/')}`).join('  ');
    process.stderr.write(`${spec.name}: ${seconds.toFixed(1)} s for ${seeds} seeds; per seed hypervolume %/best @targets %: ${perSeed}\n`);
  }
  const pct = (x: number): string => (100 * x).toFixed(2);
  const lines = [
    `Synthetic problem: ResNet-20 topology (${(problem.baseCost.macs / 1e6).toFixed(2)} MMACs), ${problem.space.groups.length} groups, channelStep ${problem.space.options.channelStep}, minKeepRatio ${problem.space.options.minKeepRatio}; targets ${TARGETS.join(', ')} (window ±${WINDOW}); budget ${budget} trials; median of ${seeds} seeds.`,
    '',
    `| controller | trials | hypervolume / exact | best acc @${TARGETS[0]} | best acc @${TARGETS[1]} | seconds (all seeds) |`,
    '|---|---|---|---|---|---|',
    `| exact optimum | – | 100.00% | ${pct(optimum.best[0])}% | ${pct(optimum.best[1])}% | – |`,
    ...rows.map((r) => `| ${r.name} | ${r.trials} | ${pct(r.hv)}% | ${pct(r.best[0])}% | ${pct(r.best[1])}% | ${r.seconds.toFixed(1)} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const random = rows.find((r) => r.name === 'random')!;
  const losers = rows
    .filter((r) => ['greedy', 'evolutionary', 'rl'].includes(r.name))
    .filter((r) => !(r.hv > random.hv && r.best.every((b, k) => b > random.best[k])))
    .map((r) => r.name);
  if (losers.length) {
    process.stdout.write(`\nNOT better than random on every median: ${losers.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main();
