import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCodes } from '../core/errors.js';
import { commands } from './commands/index.js';
import { fail } from './output.js';

/**
 * `--name -5m` -> `--name=-5m`: yargs reads a value that starts with `-` as flags (`-5 -m`), so a
 * negative duration or number would be refused as "Unknown arguments: 5, m" instead of reaching
 * the option's own check, which names the value and what was expected.
 */
function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    if (/^--[\w-]+$/.test(a) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

// A reader that closed the pipe (`autoprune inspect m | head`) wants no more output: stop quietly,
// as Unix tools do, instead of an unhandled EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const cli = yargs(joinDashValues(hideBin(process.argv)))
  .scriptName('autoprune')
  .usage('$0 <command> [options]\n\nSearch per-layer channel pruning ratios for CNNs.')
  .strict()
  .demandCommand(1, 'Give a command; see --help')
  .recommendCommands()
  .wrap(Math.min(110, process.stdout.columns || 110))
  .fail((msg, err) => {
    if (err) fail(err, true);
    process.stderr.write(`autoprune: ${msg}\n`);
    process.exit(ExitCodes.USAGE);
  });
for (const c of commands) cli.command(c);
await cli.parseAsync();
