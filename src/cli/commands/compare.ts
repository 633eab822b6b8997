import type { CommandModule } from 'yargs';
import { compareStudies } from '../../app/reports.js';
import { compareTable } from '../../report/index.js';
import { handler, info, table } from '../output.js';
import { type StoreArg, shortPath, storeOption } from './store-args.js';

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
    const { info: c, paths } = await compareStudies(args.store, args.studies.map(String), args.out);
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
