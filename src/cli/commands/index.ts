import type { CommandModule } from 'yargs';
import { compareCommand } from './compare.js';
import { configCommand } from './config-show.js';
import { doctorCommand } from './doctor.js';
import { exportCommand } from './export.js';
import { inspectCommand } from './inspect.js';
import { latencyCommand } from './latency.js';
import { listCommand } from './list.js';
import { pickCommand } from './pick.js';
import { reportCommand } from './report.js';
import { searchCommand } from './search.js';
import { serveCommand } from './serve.js';
import { showCommand } from './show.js';
import { trainCommand } from './train.js';
import { workerCommand } from './worker.js';

// biome-ignore lint/suspicious/noExplicitAny: yargs command modules differ in their argument types
export const commands: CommandModule<any, any>[] = [
  trainCommand,
  searchCommand,
  inspectCommand,
  doctorCommand,
  listCommand,
  showCommand,
  reportCommand,
  compareCommand,
  pickCommand,
  exportCommand,
  serveCommand,
  configCommand,
  workerCommand,
  latencyCommand,
];
