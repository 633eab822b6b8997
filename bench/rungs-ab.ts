/**
 * `node --import tsx bench/rungs-ab.ts [--config configs/quickstart.yaml] [--targets 0.15,0.3] [--window 0.01] [--batches-per-epoch N]
 *   [--seeds 0,1,2] [--budget 48] [--arms baselines,today,rungs] [--distill] [--out experiments/rungs-ab]
 *   [--smoke] [--summary-only]`
 *
 * Does successive halving pick better candidates than today's default, and than the baselines,
 * once all of them are fine-tuned? Per target and seed, three real studies (`autoprune search` on
 * configs derived from `--config`, one SQLite store in `--out`), each with the same fine-tune recipe
 * (the config's `evaluation.finetune`):
 *
 * - `baselines`: uniform and global only (2 proxy trials), both continued through the same rungs as
 *   the rung schedule's finalist: 1 epoch, then 2 more (3 epochs in all).
 * - `today`: the default search — random proposals after the uniform sweep, `--budget` proxy trials —
 *   whose 2 best proxies are fine-tuned 3 epochs each (6 epochs; `finalists { count: 2, epochs: 3 }`).
 * - `rungs`: evolutionary proposals warm-started from uniform and global (`search.warmStart:
 *   baselines`), `--budget` proxy trials, then rungs: the 4 best proxies get 1 epoch, the best of
 *   those 2 more epochs (4 + 2 = 6 epochs, today's fine-tune budget; the finalist has 3 epochs in all).
 *
 * A study's pick is its finalist with the best validation accuracy (the split promotion and pick
 * see); its test accuracy is the number compared. Each study runs niced, and under `flock
 * $HEAVY_LOCK` when that is set, so other heavy work on the host interleaves between studies. Results go to
 * `results.jsonl` as studies finish; a rerun skips studies already complete in the store.
 * Every study searches within `--window` of its target (default ±1% of the base FLOPs), so picks are
 * compared at nearly equal FLOPs, not the window's top edge against global at the target.
 * `--batches-per-epoch N` makes every fine-tune "epoch" N batches (`evaluation.finetune.batchesPerEpoch`),
 * a scaled-down run for a loaded or small machine; the table says so.
 * `--smoke` shrinks everything (8 trials, 5 batches per epoch) to check the wiring.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { isRungTrial } from '../src/core/types.js';
import { openStore } from '../src/store/index.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'configs/quickstart.yaml' },
    targets: { type: 'string', default: '0.15,0.3' },
    seeds: { type: 'string', default: '0,1,2' },
    budget: { type: 'string', default: '48' },
    window: { type: 'string', default: '0.01' },
    'batches-per-epoch': { type: 'string' },
    arms: { type: 'string', default: 'baselines,today,rungs' },
    distill: { type: 'boolean', default: false },
    out: { type: 'string', default: 'experiments/rungs-ab' },
    smoke: { type: 'boolean', default: false },
    'summary-only': { type: 'boolean', default: false },
  },
});

const out = resolve(values.out);
const store = join(out, 'rungs-ab.db');
const targets = values.targets.split(',').map(Number);
const seeds = values.seeds.split(',').map(Number);
const arms = values.arms.split(',');
const budget = values.smoke ? 8 : Number(values.budget);

interface Row {
  readonly arm: string;
  readonly target: number;
  readonly seed: number;
  readonly study: string;
  /** Per finalist: origin trial, its FLOPs fraction, proxy, validation and test accuracy after the last rung. */
  readonly finalists: { origin: number; source: string; flops: number; proxy: number; val: number; test: number; epochs: number }[];
  readonly seconds: number;
}

/** The parts of a user config this script rewrites (the rest is carried as it is). */
interface UserConfig {
  name?: string;
  model: { checkpoint: string };
  train: { out?: string };
  search: Record<string, unknown>;
  evaluation: { finalists?: unknown; finetune?: Record<string, unknown>; rungs?: unknown };
  run: Record<string, unknown>;
}

function armConfig(base: UserConfig, arm: string, target: number, seed: number, name: string): UserConfig {
  const cfg = structuredClone(base);
  cfg.name = name;
  cfg.model.checkpoint = resolve(cfg.model.checkpoint);
  delete cfg.train.out;
  cfg.search = { ...cfg.search, targets: [target], window: Number(values.window) };
  cfg.run = { ...cfg.run, seed, store };
  const ev = cfg.evaluation;
  delete ev.finalists;
  const perEpoch = values.smoke ? 5 : values['batches-per-epoch'] === undefined ? undefined : Number(values['batches-per-epoch']);
  ev.finetune = {
    ...(ev.finetune ?? {}),
    ...(perEpoch === undefined ? {} : { batchesPerEpoch: perEpoch }),
    ...(values.distill ? { distill: { temperature: 4, alpha: 0.9 } } : {}),
  };
  const chain = [
    { keep: 1, max: 4, finetune: { epochs: 1 } },
    { keep: 1, max: 1, finetune: { epochs: 2 } },
  ];
  if (arm === 'baselines') {
    cfg.search.controller = { name: 'global' };
    cfg.search.budget = { trials: 2 };
    ev.rungs = [
      { keep: 1, max: 2, finetune: { epochs: 1 } },
      { keep: 1, max: 2, finetune: { epochs: 2 } },
    ];
  } else if (arm === 'today') {
    cfg.search.controller = { name: 'random' };
    cfg.search.budget = { trials: budget };
    ev.rungs = [{ keep: 1, max: 2, finetune: { epochs: 3 } }];
  } else if (arm === 'rungs') {
    cfg.search.controller = { name: 'evolutionary', population: 11 };
    cfg.search.warmStart = 'baselines';
    cfg.search.budget = { trials: budget };
    ev.rungs = chain;
  } else throw new Error(`unknown arm ${arm}`);
  return cfg;
}

async function studyRow(study: string, arm: string, target: number, seed: number, seconds: number): Promise<Row | null> {
  const s = await openStore(store);
  try {
    const info = await s.getStudy(study);
    if (info?.state !== 'complete') return null;
    const trials = await s.listTrials(study);
    const byNumber = new Map(trials.map((t) => [t.number, t]));
    const rungs = trials.filter((t) => isRungTrial(t) && t.state === 'complete');
    const last = Math.max(...rungs.map((t) => (t.meta as { rung: number }).rung));
    const base = info.baseCost.macs;
    const finalists = rungs
      .filter((t) => (t.meta as { rung: number }).rung === last)
      .map((t) => {
        const origin = byNumber.get((t.meta as { origin: number }).origin)!;
        const epochs = rungs
          .filter((r) => (r.meta as { origin: number }).origin === origin.number)
          .reduce((e, r) => e + ((r.meta as { finetune: { epochs?: number } }).finetune.epochs ?? 0), 0);
        return {
          origin: origin.number,
          source: origin.controller ?? '?',
          flops: origin.cost.macs / base,
          proxy: origin.metrics.proxyAccuracy ?? Number.NaN,
          val: t.metrics.proxyAccuracy ?? Number.NaN,
          test: t.metrics.finalAccuracy ?? Number.NaN,
          epochs,
        };
      });
    return { arm, target, seed, study, finalists, seconds };
  } finally {
    await s.close();
  }
}

async function runStudy(arm: string, target: number, seed: number, base: UserConfig): Promise<void> {
  const study = `${arm}-t${Math.round(target * 100)}-s${seed}${values.distill ? '-kd' : ''}`;
  const done = await studyRow(study, arm, target, seed, 0);
  if (done) {
    // Recorded again (the summary keeps one row per study): a run that died after the study but before its row loses nothing.
    await appendFile(join(out, 'results.jsonl'), `${JSON.stringify(done)}\n`);
    console.log(`${study}: complete in the store, skipped`);
    return;
  }
  const file = join(out, 'configs', `${study}.yaml`);
  await writeFile(file, stringify(armConfig(base, arm, target, seed, study)));
  const cli = ['bin/autoprune.js', 'search', file];
  const lock = process.env.HEAVY_LOCK;
  const cmd = lock ? ['flock', lock, 'node', ...cli] : ['node', ...cli];
  const t0 = Date.now();
  console.log(`${new Date().toISOString()} ${study}: ${cmd.join(' ')}`);
  const r = spawnSync('nice', ['-n', '10', ...cmd], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`${study}: autoprune search exited ${r.status}`);
  const row = await studyRow(study, arm, target, seed, (Date.now() - t0) / 1000);
  if (!row) throw new Error(`${study}: not complete after the search`);
  await appendFile(join(out, 'results.jsonl'), `${JSON.stringify(row)}\n`);
}

const pct = (x: number) => (100 * x).toFixed(2);
function meanSd(xs: number[]): string {
  if (xs.length === 0) return '–';
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : Number.NaN;
  return `${pct(m)} ± ${Number.isNaN(sd) ? '–' : pct(sd)} (n=${xs.length})`;
}

async function summary(): Promise<void> {
  const text = existsSync(join(out, 'results.jsonl')) ? await readFile(join(out, 'results.jsonl'), 'utf8') : '';
  const rows: Row[] = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  // The last row per study (a rerun appends again).
  const latest = [...new Map(rows.map((r) => [r.study, r])).values()];
  console.log('\n| target | seed | candidate | FLOPs | proxy | val after fine-tune | test after fine-tune | fine-tune epochs |');
  console.log('|---|---|---|---|---|---|---|---|');
  const picks = new Map<string, number[]>();
  const add = (k: string, v: number) => picks.set(k, [...(picks.get(k) ?? []), v]);
  for (const r of latest.sort((a, b) => a.target - b.target || a.seed - b.seed || a.arm.localeCompare(b.arm))) {
    if (r.arm === 'baselines') {
      for (const f of r.finalists) {
        console.log(
          `| ${pct(r.target)}% | ${r.seed} | ${f.source}${r.study.endsWith('-kd') ? ' +kd' : ''} | ${pct(f.flops)}% | ${pct(f.proxy)} | ${pct(f.val)} | ${pct(f.test)} | ${f.epochs} |`,
        );
        add(`${r.target}\t${f.source}${r.study.endsWith('-kd') ? ' +kd' : ''}`, f.test);
      }
      continue;
    }
    const pick = [...r.finalists].sort((a, b) => b.val - a.val || a.origin - b.origin)[0];
    if (!pick) continue;
    console.log(
      `| ${pct(r.target)}% | ${r.seed} | ${r.arm}${r.study.endsWith('-kd') ? ' +kd' : ''} pick (trial ${pick.origin}, ${pick.source}) | ${pct(pick.flops)}% | ${pct(pick.proxy)} | ${pct(pick.val)} | ${pct(pick.test)} | ${pick.epochs} |`,
    );
    add(`${r.target}\t${r.arm}${r.study.endsWith('-kd') ? ' +kd' : ''}`, pick.test);
  }
  console.log('\n| target | candidate | test accuracy, mean ± sd over seeds |');
  console.log('|---|---|---|');
  for (const [k, v] of [...picks].sort()) {
    const [t, what] = k.split('\t');
    console.log(`| ${pct(Number(t))}% | ${what} | ${meanSd(v)} |`);
  }
}

await mkdir(join(out, 'configs'), { recursive: true });
if (!values['summary-only']) {
  const base = parseYaml(await readFile(values.config, 'utf8')) as UserConfig;
  for (const target of targets) for (const seed of seeds) for (const arm of arms) await runStudy(arm, target, seed, base);
}
await summary();
