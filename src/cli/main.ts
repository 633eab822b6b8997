import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';

const cli = yargs(hideBin(process.argv))
  .scriptName('autoprune')
  .usage('$0 <command> [options]\n\nSearch per-layer channel pruning ratios for CNNs.')
  .strict()
  .demandCommand(1, 'Give a command; see --help')
  .recommendCommands()
  .wrap(Math.min(110, process.stdout.columns || 110))
  .fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`autoprune: ${msg}\n`);
    process.exit(2);
  });
for (const c of commands) cli.command(c);
await cli.parseAsync();
