import { relative } from 'node:path';
import type { CommandModule } from 'yargs';
import { deadlineFromUntil, engineStages, loadConfig, parseDuration, PROXY_ENGINES, type ResolvedConfig } from '../../config/index.js';
import { initBackend } from '../../engine/backend.js';
import { createEvaluator, proxyEngine } from '../../evaluators/engine.js';
import { loadBaseModel, loadSplits } from '../../evaluators/setup.js';
import { accuracy } from '../../evaluators/train.js';
import { analyzeModel } from '../../model/analysis.js';
import { groupDescriptors } from '../../model/descriptors.js';
import { groupScores } from '../../model/importance.js';
import { Rng } from '../../core/rng.js';
import { buildReportInfo } from '../../report/data.js';
import { isFileLocation } from '../../core/location.js';
import { openStore } from '../../store/index.js';
import { earliest } from '../../study/budget.js';
import { acquireStudyLock } from '../../study/lock.js';
import { runStudy, studySpace, type StudyProgress } from '../../study/run.js';
import { handler, info, isTty, mmacs, note, pct, table } from '../output.js';
import { backendOption, type BackendArg } from './common.js';

interface Args extends BackendArg {
  config: string;
  fresh: boolean;
  trials?: number;
  timeBudget?: string;
  until?: string;
  concurrency?: number;
  workers?: 'threads' | 'inline';
  store?: string;
  engine?: (typeof PROXY_ENGINES)[number];
}

/** Command-line overrides go through the same resolved config the file produced. */
function withOverrides(cfg: ResolvedConfig, a: Args): ResolvedConfig {
  return {
    ...cfg,
    search: { ...cfg.search, budget: { ...cfg.search.budget, trials: a.trials ?? cfg.search.budget.trials, time: a.timeBudget ?? cfg.search.budget.time, until: a.until ?? cfg.search.budget.until } },
    run: { ...cfg.run, concurrency: a.concurrency ?? cfg.run.concurrency, workers: a.workers ?? cfg.run.workers, backend: a.backend ?? cfg.run.backend, store: a.store ?? cfg.run.store, engine: a.engine ? engineStages(a.engine) : cfg.run.engine },
  };
}

function progressLine(p: StudyProgress): string {
  const width = 24;
  const filled = Math.round((width * p.finished) / Math.max(1, p.budget));
  const eta = p.etaSeconds === null ? '?' : `${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}s`;
  const best = p.best.map((b) => `${Math.round(b.target * 100)}%: ${b.accuracy === null ? '-' : `${(100 * b.accuracy).toFixed(2)}%`}`).join('  ');
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.finished}/${p.budget} trials, ${p.running} running, ETA ${eta}  best ${best}`;
}

export const searchCommand: CommandModule<object, Args> = {
  command: 'search <config>',
  describe: 'Run (or resume) the study a config describes, then fine-tune its Pareto finalists',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'YAML/JSON config file' })
      .option('fresh', { type: 'boolean', default: false, describe: 'Delete the study of the same name and start over' })
      .option('trials', { type: 'number', describe: 'Override search.budget.trials' })
      .option('time-budget', { type: 'string', describe: 'Stop asking after this long, e.g. 8h, 90m' })
      .option('until', { type: 'string', describe: 'Stop asking at this local time, HH:MM' })
      .option('concurrency', { type: 'number', describe: 'Override run.concurrency' })
      .option('workers', { choices: ['threads', 'inline'] as const, describe: 'Override run.workers' })
      .option('store', { type: 'string', describe: 'Override run.store (SQLite file or postgres:// URL)' })
      .option('engine', { choices: PROXY_ENGINES, describe: 'Override run.engine (auto = onnxruntime for the proxy when it loads, else tfjs)' })
      .option(...backendOption),
  handler: handler(async (args) => {
    const loaded = await loadConfig(args.config);
    const cfg = withOverrides(loaded.resolved, args);
    const started = Date.now();
    const deadline = earliest(
      cfg.search.budget.time ? started + parseDuration(cfg.search.budget.time) : null,
      cfg.search.budget.until ? deadlineFromUntil(cfg.search.budget.until, new Date(started)).getTime() : null,
    );
    // Everything that can fail on bad input happens before the store is opened.
    const backend = await initBackend(cfg.run.backend);
    const splits = await loadSplits(cfg);
    const base = await loadBaseModel(cfg, splits);
    const analysis = analyzeModel(base);
    studySpace(cfg, analysis); // validates space.skip against the model's groups
    // The lock file is for SQLite; a PostgreSQL study is guarded by the store's driver lease (issue 7).
    const release = isFileLocation(cfg.run.store) ? acquireStudyLock(cfg.run.store, cfg.name) : () => undefined;
    process.once('exit', release);
    const store = await openStore(cfg.run.store);

    const abort = new AbortController();
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts === 1) {
        note('\nstopping: no new trials; running ones finish and are stored (Ctrl-C again to stop now)');
        abort.abort();
        return;
      }
      void store.requeueRunning(cfg.name).finally(async () => {
        await store.close();
        note(`stopped; running trials were re-queued. Resume with: autoprune search ${relative(process.cwd(), args.config)}`);
        process.exit(130);
      });
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    let lastDraw = 0;
    try {
      info(`search \`${cfg.name}\`: ${cfg.search.controller.name} controller, targets ${cfg.search.targets.map((t) => `${t * 100}%`).join(', ')}, ${cfg.search.budget.trials} trials, concurrency ${cfg.run.concurrency} (${cfg.run.workers}), proxy engine ${cfg.run.engine.proxy}, tfjs backend ${backend.name}, store ${relative(process.cwd(), cfg.run.store)}`);
      const summary = await runStudy({
        cfg,
        configHash: loaded.hash,
        store,
        analysis,
        controllerData: {
          groups: groupDescriptors(analysis),
          importance: cfg.search.controller.name === 'global' ? groupScores(base, analysis, cfg.evaluation.importance, new Rng(cfg.run.seed)).map((s) => [...s]) : undefined,
        },
        budget: { trials: cfg.search.budget.trials, deadline },
        fresh: args.fresh,
        signal: abort.signal,
        baseAccuracy: async () => ({ proxy: accuracy(base, splits.validation, { limit: cfg.evaluation.validation.limit }), test: accuracy(base, splits.test) }),
        // The engine is chosen (onnxruntime loaded) when the first trial needs it, not before the budget's clock.
        evaluator: async () => {
          info(`proxy engine: ${await proxyEngine(cfg)}`);
          return createEvaluator(cfg, { splits, base });
        },
        log: (line) => {
          if (isTty) process.stderr.write('\r\x1b[K');
          info(line);
        },
        onProgress: (p) => {
          if (!isTty) return;
          const t = Date.now();
          if (t - lastDraw < 200 && p.running > 0) return;
          lastDraw = t;
          process.stderr.write(`\r\x1b[K${progressLine(p)}`);
        },
      });
      if (isTty) process.stderr.write('\n');
      const s = summary.study;
      const r = buildReportInfo(s, await store.listTrials(s.name), await store.listFinals(s.name));
      const shown = r.candidates.filter((p) => p.finalist || p.onProxyFront);
      if (shown.length) {
        info(`\nproxy front and finalists (base: ${mmacs(r.base.macs)} MMACs, validation ${pct(r.base.proxyAccuracy)}, test ${pct(r.base.testAccuracy)}):`);
        info(table(['trial', 'FLOPs', 'MMACs', 'proxy acc', 'fine-tuned test acc', 'controller'], shown.map((p) => [p.trial, pct(p.flopsFraction, 1), mmacs(p.macs), pct(p.proxyAccuracy), pct(p.finalAccuracy), p.controller])));
      }
      info(`study \`${s.name}\` ${s.state} (${summary.reason}): ${summary.evaluated} trial(s) evaluated in this run, finalists: ${summary.finalists.join(', ') || 'none'}`);
      if (summary.reason === 'interrupted' || summary.reason === 'time') info(`resume with: autoprune search ${relative(process.cwd(), args.config)}`);
      info(`report: autoprune report ${s.name}${args.store ? ` --store ${args.store}` : ''}`);
      if (summary.reason === 'interrupted') process.exitCode = 130;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      await store.close();
      release();
    }
  }),
};
