import type { CommandModule } from 'yargs';
import { buildReportInfo, type ReportInfo, type ReportPoint } from '../../report/data.js';
import type { TrialRecord } from '../../store/types.js';
import { dataNotesLine } from '../../study/data-notes.js';
import { latencyCheckLine } from '../../study/latency-check.js';
import { handler, info, mmacs, pct, table } from '../output.js';
import { loadStudyData, type StoreArg, storeOption, withStore } from './store-args.js';

interface Args extends StoreArg {
  study: string;
  json: boolean;
}

/** Errors are cut to this many characters in the table (the JSON keeps them whole). */
const ERROR_WIDTH = 60;

export interface ShowTrial {
  readonly number: number;
  readonly state: string;
  readonly flopsFraction: number;
  readonly macs: number;
  readonly params: number;
  readonly proxyAccuracy: number | null;
  readonly finalAccuracy: number | null;
  readonly latencyMs: number | null;
  /** Latency predicted from the latency table when the trial was proposed (docs/latency.md), and the table's label. */
  readonly predictedLatencyMs: number | null;
  readonly latencyTable: string | null;
  /** (predicted - measured) / measured, when both are known. */
  readonly latencyPredictionError: number | null;
  readonly controller: string;
  /** FLOPs target the controller aimed at, if any. */
  readonly target: number | null;
  /** Evaluation time, startedAt -> finishedAt (null while unfinished). */
  readonly seconds: number | null;
  readonly onProxyFront: boolean;
  readonly error: string | null;
}

function seconds(t: TrialRecord | undefined): number | null {
  if (!t?.startedAt || !t.finishedAt) return null;
  const s = (Date.parse(t.finishedAt) - Date.parse(t.startedAt)) / 1000;
  return Number.isFinite(s) ? s : null;
}

/** A number or string field of a trial's meta, else null. */
function metaField<T extends 'number' | 'string'>(t: TrialRecord | undefined, key: string, type: T): (T extends 'number' ? number : string) | null {
  const m = t?.meta;
  const v = m !== null && typeof m === 'object' && !Array.isArray(m) ? m[key] : undefined;
  return typeof v === type ? (v as T extends 'number' ? number : string) : null;
}

function showTrial(p: ReportPoint, t: TrialRecord | undefined): ShowTrial {
  const predicted = metaField(t, 'predictedLatencyMs', 'number');
  return {
    number: p.trial,
    state: p.state,
    flopsFraction: p.flopsFraction,
    macs: p.macs,
    params: p.params,
    proxyAccuracy: p.proxyAccuracy,
    finalAccuracy: p.finalAccuracy,
    latencyMs: p.latencyMs,
    predictedLatencyMs: predicted,
    latencyTable: metaField(t, 'latencyTable', 'string'),
    latencyPredictionError: predicted !== null && p.latencyMs !== null && p.latencyMs > 0 ? (predicted - p.latencyMs) / p.latencyMs : null,
    controller: p.controller,
    target: p.target,
    seconds: seconds(t),
    onProxyFront: p.onProxyFront,
    error: p.error,
  };
}

function short(s: string | null): string {
  if (s === null) return '';
  const line = s.split('\n')[0];
  return line.length > ERROR_WIDTH ? `${line.slice(0, ERROR_WIDTH - 1)}…` : line;
}

function summary(r: ReportInfo): string {
  const c = r.counts;
  return `study ${r.study.name} (${r.study.state}): ${c.complete} complete, ${c.failed} failed, ${c.pending} pending of ${c.total} trials; base ${mmacs(r.base.macs)} MMACs, ${r.base.params} params, proxy acc ${pct(r.base.proxyAccuracy)}, test acc ${pct(r.base.testAccuracy)}`;
}

export const showCommand: CommandModule<object, Args> = {
  command: 'show <study>',
  describe: 'Print the trials of a study and its current proxy Pareto front',
  builder: (y) =>
    y
      .positional('study', { type: 'string', demandOption: true, describe: 'Study name (see `autoprune list`)' })
      .option(...storeOption)
      .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' }),
  handler: handler(async (args) => {
    const { study, trials, finals, dataNotes, latencyCheck } = await withStore(args.store, (s) => loadStudyData(s, args.study));
    const r = buildReportInfo(study, trials, finals, dataNotes, latencyCheck);
    const byNumber = new Map(trials.map((t) => [t.number, t]));
    const rows = r.points.map((p) => showTrial(p, byNumber.get(p.trial)));
    const proxyFront = r.proxyFront.map((p) => p.trial);
    const finalFront = r.finalFront.map((p) => p.trial);
    if (args.json) {
      info(
        JSON.stringify(
          {
            study: r.study.name,
            state: r.study.state,
            configHash: r.study.configHash,
            base: r.base,
            data: r.data,
            counts: r.counts,
            trials: rows,
            proxyFront,
            finalFront,
          },
          null,
          2,
        ),
      );
      return;
    }
    info(summary(r));
    if (r.data) info(dataNotesLine(r.data));
    if (r.latencyCheck) info(latencyCheckLine(r.latencyCheck));
    info('');
    info(
      table(
        ['trial', 'state', 'FLOPs', 'MMACs', 'params', 'proxy acc', 'final acc', 'controller', 'target', 'seconds', 'error'],
        rows.map((t) => [
          t.number,
          t.state,
          pct(t.flopsFraction, 1),
          mmacs(t.macs),
          t.params,
          pct(t.proxyAccuracy),
          pct(t.finalAccuracy),
          t.controller,
          t.target === null ? '-' : pct(t.target, 0),
          t.seconds === null ? '-' : t.seconds.toFixed(1),
          short(t.error),
        ]),
      ),
    );
    info('');
    info(`proxy front (MACs ascending): ${proxyFront.length === 0 ? 'none yet' : proxyFront.map((n) => `#${n}`).join(' ')}`);
    if (finalFront.length > 0) info(`fine-tuned front: ${finalFront.map((n) => `#${n}`).join(' ')}`);
  }),
};
