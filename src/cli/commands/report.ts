import type { CommandModule } from 'yargs';
import { reportStudy } from '../../app/reports.js';
import { fidelityLine, rungAgreementLine, targetLabel } from '../../report/index.js';
import { handler, info, pct } from '../output.js';
import { type StoreArg, shortPath, storeOption } from './store-args.js';

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
    const { report: r, paths } = await reportStudy(args.store, args.study, args.out);
    for (const p of [paths.html, paths.markdown, paths.pareto, paths.progress]) info(`wrote ${shortPath(p)}`);
    const last = r.progress.byNumber.at(-1);
    const best = r.targets.map((t, k) => `${targetLabel(t, r.window)} ${pct(last?.bestAtTarget[k])}`).join(', ');
    info(
      `${r.study.name} (${r.study.state}): ${r.counts.complete} complete / ${r.counts.failed} failed / ${r.counts.total} trials; proxy front ${r.proxyFront.length} trials, ${r.counts.finalists} finalists; hypervolume ${r.hypervolume.toFixed(4)}`,
    );
    info(`fidelities: ${fidelityLine(r)}; rank agreement between rungs (Kendall tau): ${rungAgreementLine(r)}`);
    info(`best proxy accuracy (rung 0): ${best}; base model proxy ${pct(r.base.proxyAccuracy)}, test ${pct(r.base.testAccuracy)}`);
  }),
};
