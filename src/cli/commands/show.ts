import type { CommandModule } from 'yargs';
import { showStudy } from '../../app/reports.js';
import { finalRungOf, formatRungAgreement, type ReportInfo, rungLabel } from '../../report/data.js';
import { dataNotesLine } from '../../study/data-notes.js';
import { latencyCheckLine } from '../../study/latency-check.js';
import { handler, info, mmacs, pct, table } from '../output.js';
import { type StoreArg, storeOption } from './store-args.js';

interface Args extends StoreArg {
  study: string;
  json: boolean;
}

/** Errors are cut to this many characters in the table (the JSON keeps them whole). */
const ERROR_WIDTH = 60;

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
    const { report: r, trials: rows, proxyFront, finalFront } = await showStudy(args.store, args.study);
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
            rungs: r.rungs.map((g) => ({
              rung: g.rung,
              label: rungLabel(r, g.rung),
              training: g.training,
              split: g.split,
              candidates: g.points.length,
              front: g.front.map((p) => p.trial),
            })),
            rankAgreement: r.rungAgreement,
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
        [
          'trial',
          'state',
          'FLOPs',
          'MMACs',
          'params',
          'proxy acc (rung 0)',
          finalRungOf(r) === null ? 'final acc' : `final acc (rung ${finalRungOf(r)})`,
          'top rung',
          'controller',
          'target',
          'seconds',
          'error',
        ],
        rows.map((t) => [
          t.number,
          t.state,
          pct(t.flopsFraction, 1),
          mmacs(t.macs),
          t.params,
          pct(t.proxyAccuracy),
          pct(t.finalAccuracy),
          t.topRung,
          t.controller,
          t.target === null ? '-' : pct(t.target, 0),
          t.seconds === null ? '-' : t.seconds.toFixed(1),
          short(t.error),
        ]),
      ),
    );
    info('');
    info(`proxy front, ${rungLabel(r, 0)}, MACs ascending: ${proxyFront.length === 0 ? 'none yet' : proxyFront.map((n) => `#${n}`).join(' ')}`);
    for (const g of r.rungs.slice(1)) {
      info(`front, ${rungLabel(r, g.rung)}, test accuracy: ${g.front.length === 0 ? 'none yet' : g.front.map((p) => `#${p.trial}`).join(' ')}`);
    }
    if (r.rungAgreement.length > 0) info(`rank agreement between rungs (Kendall tau): ${r.rungAgreement.map(formatRungAgreement).join('; ')}`);
  }),
};
