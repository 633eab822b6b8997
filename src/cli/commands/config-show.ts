import { stringify } from 'yaml';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../config/index.js';
import { handler, info } from '../output.js';

interface ShowArgs {
  file: string;
  json: boolean;
}

const showCommand: CommandModule<object, ShowArgs> = {
  command: 'show <file>',
  describe: 'Print the resolved config (every default filled, paths absolute) and its hash',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'YAML/JSON config file' })
      .option('json', { type: 'boolean', default: false, describe: 'Print { config, hash } as JSON' }),
  handler: handler(async (args) => {
    const { resolved, hash } = await loadConfig(args.file);
    if (args.json) {
      info(JSON.stringify({ config: resolved, hash }, null, 2));
      return;
    }
    // The hash goes in a comment so the output stays a valid config that resolves to the same hash.
    info(`# ${args.file}, resolved (defaults filled, paths absolute)\n# config hash: ${hash}`);
    process.stdout.write(stringify(resolved));
  }),
};

export const configCommand: CommandModule<object, object> = {
  command: 'config <command>',
  describe: 'Config tools (`config show <file>`)',
  builder: (y) => y.command(showCommand).demandCommand(1, 'Give a config subcommand; see --help'),
  handler: () => undefined,
};
