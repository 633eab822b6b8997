import { relative } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadSearchConfig } from '../../app/config.js';
import { runSearch, type StudyProgress } from '../../app/driver.js';
import { PROXY_ENGINES } from '../../config/index.js';
import { describeTargets } from '../../config/sections/search.js';
import { isFileLocation, redactUrl } from '../../core/location.js';
import { finalRungOf } from '../../report/data.js';
import { handler, info, isTty, mmacs, note, pct, table } from '../output.js';
import { type BackendArg, backendOption } from './common.js';

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
    const loaded = await loadSearchConfig(args.config, args);
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
      const { summary, report: r } = await runSearch({
        loaded,
        fresh: args.fresh,
        signal: abort.signal,
        progress: isTty,
        onTableProgress: tableProgress,
        onStart: ({ cfg, backend }) =>
          info(
            `search \`${cfg.name}\`: ${cfg.search.controller.name} controller, targets ${describeTargets(cfg.search.targets)}, ${cfg.search.budget.trials} trials, concurrency ${cfg.run.concurrency} (${cfg.run.workers}), proxy engine ${cfg.run.engine.proxy}, tfjs backend ${backend.name}, store ${isFileLocation(cfg.run.store) ? relative(process.cwd(), cfg.run.store) : redactUrl(cfg.run.store)}`,
          ),
        onEngine: (engine) => info(`proxy engine: ${engine}`),
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
      const shown = r.candidates.filter((p) => p.finalist || p.onProxyFront);
      if (shown.length) {
        info(`\nproxy front and finalists (base: ${mmacs(r.base.macs)} MMACs, validation ${pct(r.base.proxyAccuracy)}, test ${pct(r.base.testAccuracy)}):`);
        info(
          table(
            [
              'trial',
              'FLOPs',
              'MMACs',
              'proxy acc (rung 0)',
              finalRungOf(r) === null ? 'fine-tuned test acc' : `fine-tuned test acc (rung ${finalRungOf(r)})`,
              'controller',
            ],
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
    }
  }),
};
