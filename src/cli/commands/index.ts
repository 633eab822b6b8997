import type { CommandModule } from 'yargs';
import { doctorCommand } from './doctor.js';
import { inspectCommand } from './inspect.js';
import { searchCommand } from './search.js';
import { trainCommand } from './train.js';
import { listCommand } from './list.js';
import { showCommand } from './show.js';
import { reportCommand } from './report.js';
import { compareCommand } from './compare.js';
import { pickCommand } from './pick.js';
import { exportCommand } from './export.js';
import { configCommand } from './config-show.js';
import { workerCommand } from './worker.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [trainCommand, searchCommand, inspectCommand, doctorCommand, listCommand, showCommand, reportCommand, compareCommand, pickCommand, exportCommand, configCommand, workerCommand];
