/**
 * The driver of the PostgreSQL crash torture with `--adapt-mix` (scripts/torture-pg.ts): what
 * `autoprune search` does (inputs recorded, artifacts through the store), with the torture's
 * decorator that turns some proposals into stage-`adapt` trials and children of earlier ones
 * (AdaptMix of scripts/torture-search.ts). With `run.workers: none` it only drives; the
 * `autoprune worker` processes then pass adapted weights to each other through the database.
 *   node --import tsx scripts/torture-pg-driver.ts <config.json>
 */
import { studyInputs } from '../src/cli/commands/worker.js';
import { studyEvaluator } from '../src/cli/commands/worker-evaluator.js';
import { loadConfig } from '../src/config/index.js';
import { initBackend } from '../src/engine/backend.js';
import { createEvaluator } from '../src/evaluators/engine.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { accuracy } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { openStore } from '../src/store/index.js';
import { localWorkersOf, runStudy } from '../src/study/run.js';
import { AdaptMix } from './torture-search.js';

const { resolved: cfg, hash } = await loadConfig(process.argv[2]);
await initBackend(cfg.run.backend);
const splits = await loadSplits(cfg);
const base = await loadBaseModel(cfg, splits);
const store = await openStore(cfg.run.store);
try {
  const s = await runStudy({
    cfg,
    configHash: hash,
    store,
    analysis: analyzeModel(base),
    inputs: studyInputs(base, splits),
    baseAccuracy: async () => ({ proxy: accuracy(base, splits.validation), test: accuracy(base, splits.test) }),
    evaluator: async () => studyEvaluator(await createEvaluator(cfg, { splits, base }), store, cfg.name),
    localWorkers: localWorkersOf(cfg),
    budget: { trials: cfg.search.budget.trials, deadline: null },
    fresh: false,
    signal: new AbortController().signal,
    log: (l) => console.log(l),
    wrapController: (c) => new AdaptMix(c),
    pollMs: 250,
  });
  console.log(`study \`${s.study.name}\` ${s.study.state} (${s.reason}), finalists ${s.finalists.join(',')}`);
} finally {
  await store.close();
}
