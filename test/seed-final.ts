/**
 * A finalist as the product records it, for tests that need studies with finals: a `finetune`
 * trial of the last rung continuing trial `origin`, claimed and completed with its test accuracy
 * (src/study/finals.ts reads it as the origin's final).
 */
import type { DriverLease, Store, TrialRecord } from '../src/store/types.js';
import { trialKey } from '../src/study/lineage.js';
import type { RungMeta } from '../src/study/rungs.js';

export async function seedFinal(
  store: Store,
  study: string,
  origin: number,
  finalAccuracy: number,
  o: { epochs?: number; rung?: number; latencyMs?: number; trainEngine?: string; validation?: number; seconds?: number; driver?: DriverLease } = {},
): Promise<TrialRecord> {
  const from = await store.getTrial(study, origin);
  if (!from) throw new Error(`seedFinal: no trial ${origin} in ${study}`);
  const meta: RungMeta = { rung: o.rung ?? 1, origin, target: null, weights: null, finetune: { epochs: o.epochs ?? 1 }, last: true };
  const lease = o.driver ?? (await store.acquireDriver(study, 'seed', 60_000, { stale: () => true }));
  const snapshot = await store.latestSnapshot(study);
  const [t] = await store.enqueueTrials(
    lease,
    [
      {
        candidate: from.candidate,
        key: trialKey(from.candidate, 'finetune', origin),
        cost: from.cost,
        controller: from.controller,
        meta: meta as never,
        stage: 'finetune',
        parent: origin,
      },
    ],
    { told: snapshot?.told ?? 0, state: snapshot?.state ?? null },
  );
  if (!o.driver) await store.releaseDriver(lease);
  const claim = await store.claimTrial(study, 'seed', { leaseMs: 60_000, number: t.number });
  if (!claim) throw new Error(`seedFinal: trial ${t.number} could not be claimed`);
  return store.completeTrial(claim, {
    proxyAccuracy: o.validation ?? finalAccuracy,
    finalAccuracy,
    ...(o.latencyMs === undefined ? {} : { latencyMs: o.latencyMs }),
    timings: { total: o.seconds ?? 1, ...(o.trainEngine ? { [`train@${o.trainEngine}`]: o.seconds ?? 1 } : {}) },
  });
}
