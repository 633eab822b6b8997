/**
 * The lease thread (leases.ts): opens its own connection to the store and renews the leases the
 * main thread hands it on timers of its own, so a synchronous engine call on the main thread never
 * delays a renewal. It reports a failed renewal as `lost` and forgets that lease.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isAutopruneError } from '../core/errors.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { type FromLeaseThread, renew, type ToLeaseThread } from './leases.js';

const port = parentPort!;
const send = (m: FromLeaseThread) => port.postMessage(m);

async function main(): Promise<void> {
  let store: Store;
  try {
    store = await openStore((workerData as { location: string }).location);
  } catch (e) {
    send({ op: 'failed', message: (e as Error).message });
    return;
  }
  const timers = new Map<number, NodeJS.Timeout>();
  port.on('message', (m: ToLeaseThread) => {
    if (m.op === 'keep') {
      const timer = setInterval(() => {
        renew(store, m.lease, m.leaseMs).catch((e: Error) => {
          if (!timers.has(m.id)) return; // stopped meanwhile: the failure is nobody's news
          clearInterval(timers.get(m.id));
          timers.delete(m.id);
          send({ op: 'lost', id: m.id, code: isAutopruneError(e) ? e.code : null, message: e.message });
        });
      }, m.everyMs);
      timers.set(m.id, timer);
    } else if (m.op === 'stop') {
      clearInterval(timers.get(m.id));
      timers.delete(m.id);
    } else {
      timers.forEach((t) => clearInterval(t));
      timers.clear();
      void store.close().finally(() => {
        send({ op: 'closed' });
        port.close();
      });
    }
  });
  send({ op: 'ready' });
}

await main();
