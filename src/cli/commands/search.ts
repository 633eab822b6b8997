import { relative } from 'node:path';
import type { CommandModule } from 'yargs';
import { configHash, deadlineFromUntil, type LoadedConfig, loadConfig, PROXY_ENGINES, parseDuration, resolveConfig } from '../../config/index.js';
import { describeTargets } from '../../config/sections/search.js';
import { isFileLocation, redactUrl } from '../../core/location.js';
import { Rng } from '../../core/rng.js';
import { initBackend } from '../../engine/backend.js';
import { createEvaluator, engineAccuracy, proxyEngine } from '../../evaluators/engine.js';
import { loadBaseModel, loadSplits } from '../../evaluators/setup.js';
import { needsLatencyTable, type PreparedLatency, prepareLatency, resolveChannelStep } from '../../latency/study.js';
import { analyzeModel } from '../../model/analysis.js';
import { groupDescriptors } from '../../model/descriptors.js';
import { groupScores } from '../../model/importance.js';
import { buildReportInfo } from '../../report/data.js';
import { openStore } from '../../store/index.js';
import { earliest } from '../../study/budget.js';
import { runStudy, type StudyProgress, studySpace } from '../../study/run.js';
import { handler, info, isTty, mmacs, note, pct, table } from '../output.js';
import { type BackendArg, backendOption } from './common.js';
import { studyInputs } from './worker.js';
import { studyEvaluator } from './worker-evaluator.js';

interface Args extends BackendArg {
  config: string;
  fresh: boolean;
  trials?: number;
  timeBudget?: string;
  until?: string;
  concurrency?: number;
  workers?: 'threads' | 'inline' | 'none';
  store?: string;
  engine?: (typeof PROXY_ENGINES)[number];
}

type Mapping = Record<string, unknown>;
const section = (v: unknown): Mapping => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Mapping) : {});
const defined = (o: Mapping): Mapping => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * Command-line overrides are written into the user's config and validated by the same schema
 * (`--concurrency 100` is refused like `run.concurrency: 100` in the file would be).
 */
export function withOverrides(loaded: LoadedConfig, a: Partial<Args>, source: string): LoadedConfig {
  const budget = defined({ trials: a.trials, time: a.timeBudget, until: a.until });
  const run = defined({ concurrency: a.concurrency, workers: a.workers, backend: a.backend, store: a.store, engine: a.engine });
  if (Object.keys(budget).length === 0 && Object.keys(run).length === 0) return loaded;
  const u = section(loaded.user);
  const search = section(u.search);
  const user = { ...u, search: { ...search, budget: { ...section(search.budget), ...budget } }, run: { ...section(u.run), ...run } };
  const resolved = resolveConfig(user, { source: `${source} with command-line options` });
  return { user, resolved, hash: configHash(resolved) };
}

/** `latency table: 37/164 shapes` on a terminal while missing shapes are measured. */
export function tableProgress(done: number, missing: number): void {
  if (!isTty) return;
  process.stderr.write(`\r\x1b[Klatency table: ${done}/${missing} shapes measured`);
  if (done === missing) process.stderr.write('\r\x1b[K');
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
      .option('workers', {
        choices: ['threads', 'inline', 'none'] as const,
        describe: 'Override run.workers (none: only drive; `autoprune worker` processes evaluate)',
      })
      .option('store', { type: 'string', describe: 'Override run.store (SQLite file or postgres:// URL)' })
      .option('engine', { choices: PROXY_ENGINES, describe: 'Override run.engine (auto = onnxruntime for the proxy when it loads, else tfjs)' })
      .option(...backendOption),
  handler: handler(async (args) => {
    const loaded = withOverrides(await loadConfig(args.config), args, args.config);
    let cfg = loaded.resolved;
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
    studySpace(cfg, analysis, 1); // validates space.skip against the model's groups
    const store = await openStore(cfg.run.store);
    let latency: PreparedLatency | undefined;
    try {
      // A resumed study keeps the step it was started with (a new sweep on a busy host could differ).
      const existing = args.fresh ? null : await store.getStudy(cfg.name);
      cfg = await resolveChannelStep(cfg, { store, analysis, log: info, onProgress: tableProgress, known: existing?.space.options.channelStep });
      const space = studySpace(cfg, analysis);
      latency = needsLatencyTable(cfg) ? await prepareLatency({ cfg, store, analysis, space, base, log: info, onProgress: tableProgress }) : undefined;
    } catch (e) {
      await store.close();
      throw e;
    }

    const abort = new AbortController();
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts === 1) {
        note('\nstopping: no new trials; running ones finish and are stored (Ctrl-C again to stop now)');
        abort.abort();
        return;
      }
      // The trials this process held are re-queued by the next search at once (their worker is gone).
      note(`stopped; running trials will be re-queued. Resume with: autoprune search ${relative(process.cwd(), args.config)}`);
      process.exit(130);
    };
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigint);
    let lastDraw = 0;
    try {
      info(
        `search \`${cfg.name}\`: ${cfg.search.controller.name} controller, targets ${describeTargets(cfg.search.targets)}, ${cfg.search.budget.trials} trials, concurrency ${cfg.run.concurrency} (${cfg.run.workers}), proxy engine ${cfg.run.engine.proxy}, tfjs backend ${backend.name}, store ${isFileLocation(cfg.run.store) ? relative(process.cwd(), cfg.run.store) : redactUrl(cfg.run.store)}`,
      );
      const inlineTfjs = cfg.run.workers === 'inline' && cfg.run.engine.proxy !== 'onnxruntime';
      const summary = await runStudy({
        cfg,
        configHash: loaded.hash,
        store,
        inputs: studyInputs(base, splits),
        analysis,
        latency,
        controllerData: {
          groups: groupDescriptors(analysis),
          importance:
            cfg.search.controller.name === 'global'
              ? groupScores(base, analysis, cfg.evaluation.importance, new Rng(cfg.run.seed)).map((s) => [...s])
              : undefined,
        },
        budget: { trials: cfg.search.budget.trials, deadline },
        fresh: args.fresh,
        signal: abort.signal,
        baseAccuracy: async () => ({
          proxy: await engineAccuracy(cfg, base, splits.validation, cfg.evaluation.validation.limit),
          test: await engineAccuracy(cfg, base, splits.test),
        }),
        // The engine is chosen (onnxruntime loaded) when the first trial needs it, not before the budget's clock.
        evaluator: async () => {
          info(`proxy engine: ${await proxyEngine(cfg)}`);
          return studyEvaluator(await createEvaluator(cfg, { splits, base }), store, cfg.name);
        },
        // Leases are trusted only when the engine runs off the main thread (see runStudy); the
        // engine is not known yet, so inline tfjs is assumed unless onnxruntime was named.
        localWorkers: cfg.run.workers === 'none' ? 0 : inlineTfjs ? 1 : cfg.run.concurrency,
        // Other processes' results are seen by polling: poll faster when they do the work.
        pollMs: cfg.run.remoteWorkers > 0 ? 250 : undefined,
        engineOnMainThread: inlineTfjs,
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
        info(
          table(
            ['trial', 'FLOPs', 'MMACs', 'proxy acc', 'fine-tuned test acc', 'controller'],
            shown.map((p) => [p.trial, pct(p.flopsFraction, 1), mmacs(p.macs), pct(p.proxyAccuracy), pct(p.finalAccuracy), p.controller]),
          ),
        );
      }
      info(
        `study \`${s.name}\` ${s.state} (${summary.reason}): ${summary.evaluated} trial(s) evaluated in this run, finalists: ${summary.finalists.join(', ') || 'none'}`,
      );
      if (summary.reason === 'interrupted' || summary.reason === 'time') info(`resume with: autoprune search ${relative(process.cwd(), args.config)}`);
      info(`report: autoprune report ${s.name}${args.store ? ` --store ${args.store}` : ''}`);
      if (summary.reason === 'interrupted') process.exitCode = 130;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      await store.close();
    }
  }),
};
