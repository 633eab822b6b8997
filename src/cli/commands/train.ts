import type { CommandModule } from 'yargs';
import { trainBase } from '../../app/train.js';
import { handler, info, isTty, note } from '../output.js';
import { type BackendArg, backendOption } from './common.js';

interface Args extends BackendArg {
  config: string;
  epochs?: number;
  restart?: boolean;
}

export const trainCommand: CommandModule<object, Args> = {
  command: 'train <config>',
  describe: 'Train the base model of a config (model.zoo) and save it where model.checkpoint points (or train.out)',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'YAML/JSON config file' })
      .option('epochs', { type: 'number', describe: 'Override train.epochs' })
      .option('restart', { type: 'boolean', describe: 'Ignore a checkpoint of an interrupted run and start over' })
      .option(...backendOption),
  handler: handler(async (args) => {
    await trainBase({ ...args, info, note, progressEveryMs: isTty ? 1000 : 30000 });
  }),
};
