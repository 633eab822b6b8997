import type { CommandModule } from 'yargs';
import { DEFAULT_HOST, DEFAULT_PORT, startDashboard } from '../../app/dashboard.js';
import { handler, info, note } from '../output.js';
import { type StoreArg, storeOption } from './store-args.js';

interface Args extends StoreArg {
  port: number;
  host: string;
  token?: string;
}

export const serveCommand: CommandModule<object, Args> = {
  command: 'serve',
  describe: 'A live dashboard over the store (read-only): studies, Pareto fronts, trials, progress, compare, pick; safe while searches run',
  builder: (y) =>
    y
      .option(...storeOption)
      .option('port', { type: 'number', default: DEFAULT_PORT, describe: 'TCP port (0: any free one)' })
      .option('host', { type: 'string', default: DEFAULT_HOST, describe: 'Address to bind; anything but loopback needs --token' })
      .option('token', { type: 'string', describe: 'Secret every request must carry (default $AUTOPRUNE_SERVE_TOKEN)' }),
  handler: handler(async (args) => {
    const fromEnv = process.env.AUTOPRUNE_SERVE_TOKEN;
    const token = args.token ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : null);
    const server = await startDashboard({ store: args.store, port: Number(args.port), host: String(args.host), token });
    info(`autoprune dashboard on ${server.url}${token === null ? '' : ' (token required: open it once with ?token=<token>)'}`);
    note('Ctrl-C stops it');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
  }),
};
