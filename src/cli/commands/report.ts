import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { buildReportInfo, targetLabel, writeReport } from '../../report/index.js';
import { handler, info, pct } from '../output.js';
import { loadStudyData, type StoreArg, shortPath, storeOption, withStore } from './store-args.js';

interface Args extends StoreArg {
  study: string;
  out?: string;
}

export const reportCommand: CommandModule<object, Args> = {
  command: 'report <study>',
  describe: 'Write the HTML/Markdown report and Pareto/progress charts of a study (safe while its search runs)',
  builder: (y) =>
    y
      .positional('study', { type: 'string', demandOption: true, describe: 'Study name (see `autoprune list`)' })
      .option('out', { type: 'string', describe: 'Output folder (default reports/<study>)' })
      .option(...storeOption),
  handler: handler(async (args) => {
    const { study, trials, finals, dataNotes, latencyCheck } = await withStore(args.store, (s) => loadStudyData(s, args.study));
    const r = buildReportInfo(study, trials, finals, dataNotes, latencyCheck);
    const paths = await writeReport(r, args.out ?? join('reports', study.name));
    for (const p of [paths.html, paths.markdown, paths.pareto, paths.progress]) info(`wrote ${shortPath(p)}`);
    const last = r.progress.byNumber.at(-1);
    const best = r.targets.map((t, k) => `${targetLabel(t, r.window)} ${pct(last?.bestAtTarget[k])}`).join(', ');
    info(
      `${r.study.name} (${r.study.state}): ${r.counts.complete} complete / ${r.counts.failed} failed / ${r.counts.total} trials; proxy front ${r.proxyFront.length} trials, ${r.counts.finalists} finalists; hypervolume ${r.hypervolume.toFixed(4)}`,
    );
    info(`best proxy accuracy: ${best}; base model proxy ${pct(r.base.proxyAccuracy)}, test ${pct(r.base.testAccuracy)}`);
  }),
};
