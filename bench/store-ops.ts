/**
 * The store's own cost per trial as a queue: `--trials` waiting trials, then `--lanes` concurrent
 * loops of claim -> heartbeat -> complete in one process until none waits. No evaluation: what is
 * measured is the store (its transactions and round trips), which bounds how many trials per second
 * any number of workers can move.
 *   node --import tsx bench/store-ops.ts <location> [--trials 400] [--lanes 4]
 * <location>: a SQLite file path, `:memory:`, or a postgres:// URL (a schema of its own is created
 * in that database and dropped afterwards).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { isPostgresUrl, openStore } from '../src/store/index.js';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { trials: { type: 'string', default: '400' }, lanes: { type: 'string', default: '4' } },
});
const location = positionals[0];
if (location === undefined) throw new Error('usage: bench/store-ops.ts <location> [--trials 400] [--lanes 4]');
const N = Number(opts.trials);
const LANES = Number(opts.lanes);

let url = location;
let drop = async () => {};
if (isPostgresUrl(location)) {
  const schema = `store_ops_${process.pid}`;
  const admin = new pg.Client({ connectionString: location });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  const u = new URL(location);
  u.searchParams.set('options', `-c search_path=${schema}`);
  url = u.toString();
  drop = async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  };
}

const store = await openStore(url);
const study = `ops-${process.pid}`;
await store.createStudy({
  name: study,
  configHash: 'bench',
  config: {},
  space: { groups: [], options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } },
  baseCost: { macs: 1, params: 1 },
  baseProxyAccuracy: null,
  baseTestAccuracy: null,
});
const driver = await store.acquireDriver(study, 'bench', 600_000);
const trials = Array.from({ length: N }, (_, i) => ({ candidate: { channels: [i] }, key: String(i), cost: { macs: 1, params: 1 }, controller: 'bench' }));
await store.enqueueTrials(driver, trials, { told: 0, state: null });
const t0 = performance.now();
await Promise.all(
  Array.from({ length: LANES }, async (_, lane) => {
    for (;;) {
      const claim = await store.claimTrial(study, `lane-${lane}`, { leaseMs: 600_000 });
      if (claim === null) return;
      await store.heartbeat(claim, 600_000);
      await store.completeTrial(claim, { proxyAccuracy: 0.5 });
    }
  }),
);
const s = (performance.now() - t0) / 1000;
console.log(`${N} trials, ${LANES} lanes, claim + heartbeat + complete: ${s.toFixed(2)} s, ${(N / s).toFixed(0)} trials/s`);
await store.deleteStudy(study);
await store.close();
await drop();
