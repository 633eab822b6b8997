import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import { buildCompareInfo, compareTable, writeCompareReport } from '../../report/index.js';
import { handler, info, table } from '../output.js';
import { loadStudyData, type StoreArg, type StudyData, shortPath, storeOption, withStore } from './store-args.js';

interface Args extends StoreArg {
  studies: string[];
  out?: string;
  json: boolean;
}

export const compareCommand: CommandModule<object, Args> = {
  command: 'compare <studies..>',
  describe: 'Compare studies: hypervolume, best accuracy at each FLOPs target, trials, wall time; writes a chart and HTML/Markdown',
  builder: (y) =>
    y
      .positional('studies', { type: 'string', array: true, demandOption: true, describe: 'Two or more study names' })
      .option('out', { type: 'string', describe: 'Output folder (default reports/compare-<a>-<b>...)' })
      .option(...storeOption)
      .option('json', { type: 'boolean', default: false, describe: 'Print the comparison as JSON' }),
  handler: handler(async (args) => {
    const names = args.studies.map(String);
    if (names.length < 2) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected two or more studies to compare, got ${quote(names)}`);
    }
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected distinct studies to compare, got ${quote(dup)} twice`);
    const data = await withStore(args.store, async (s) => {
      const out: StudyData[] = [];
      for (const n of names) out.push(await loadStudyData(s, n));
      return out;
    });
    const c = buildCompareInfo(data.map((d) => ({ ...d, trials: [...d.trials, ...d.rungTrials] })));
    const paths = await writeCompareReport(c, args.out ?? join('reports', `compare-${names.join('-')}`));
    if (args.json) {
      info(JSON.stringify({ ...c, paths }, null, 2));
      return;
    }
    const t = compareTable(c);
    info(
      table(
        [...t.header],
        t.rows.map((r) => r.map((cell) => cell.text || '-')),
      ),
    );
    if (!c.sameBase) info("note: the studies have different base models; hypervolumes are normalised by each base model's MACs");
    info('');
    for (const p of [paths.html, paths.markdown, paths.chart]) info(`wrote ${shortPath(p)}`);
  }),
};
