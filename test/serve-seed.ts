/**
 * Stores for the dashboard's tests, built with the Store API as a search would (driver lease,
 * enqueue, claim, complete/fail, finals). Accuracies follow a smooth curve of the FLOPs fraction, so
 * a front exists; everything random comes from a seeded Rng.
 */

import { Rng } from '../src/core/rng.js';
import { candidateKey, type SearchSpace } from '../src/core/space.js';
import type { TrialMetrics } from '../src/core/types.js';
import type { DriverLease, NewTrial, Store, StudyRecord } from '../src/store/types.js';
import { seedFinal } from './seed-final.js';

export const SEED_SPACE: SearchSpace = {
  groups: [
    { id: 'conv1', channels: 32, layers: ['conv1', 'bn1'] },
    { id: 'block1.conv', channels: 64, layers: ['block1.conv', 'block1.bn'] },
    { id: 'block2.conv', channels: 128, layers: ['block2.conv', 'block2.bn'] },
  ],
  options: { minKeepRatio: 0.25, channelStep: 8, skip: [] },
};

export const BASE_MACS = 40_000_000;
export const BASE_PARAMS = 500_000;

export function seedStudy(name: string, extra: Partial<StudyRecord> = {}): Parameters<Store['createStudy']>[0] {
  return {
    name,
    configHash: `hash-${name}`,
    config: { search: { targets: [0.5, 0.3] } },
    space: SEED_SPACE,
    baseCost: { macs: BASE_MACS, params: BASE_PARAMS },
    baseProxyAccuracy: 0.91,
    baseTestAccuracy: 0.9,
    ...extra,
  };
}

export interface SeededTrial {
  readonly trial: NewTrial;
  /** What the trial ends as: metrics, an error, or nothing (left waiting). */
  readonly outcome: { metrics: TrialMetrics } | { error: string } | null;
}

/** A trial whose channels are drawn from `rng`; its accuracy rises with its FLOPs fraction. */
export function randomTrial(rng: Rng, controller = 'random'): { trial: NewTrial; metrics: TrialMetrics } {
  const channels = SEED_SPACE.groups.map((g) => 8 * (1 + Math.floor(rng.next() * (g.channels / 8))));
  const frac = channels.reduce((s, c, i) => s + c / SEED_SPACE.groups[i].channels, 0) / channels.length;
  const candidate = { channels };
  const macs = Math.round(BASE_MACS * frac * frac);
  return {
    trial: { candidate, key: candidateKey(candidate), cost: { macs, params: Math.round(BASE_PARAMS * frac) }, controller, meta: { target: 0.5 } },
    metrics: { proxyAccuracy: 0.91 * (1 - 0.5 * (1 - frac) ** 2) - 0.04 * rng.next(), latencyMs: 0.2 + 1.5 * frac * frac },
  };
}

/** Enqueues `trials` under a driver lease and runs each outcome as a worker would. Returns the trial numbers. */
export async function addTrials(store: Store, study: string, driver: DriverLease, trials: readonly SeededTrial[], told = 0): Promise<number[]> {
  const recs = await store.enqueueTrials(
    driver,
    trials.map((t) => t.trial),
    { told, state: { seeded: true } },
  );
  for (let i = 0; i < recs.length; i++) {
    const o = trials[i].outcome;
    if (o === null) continue;
    const c = await store.claimTrial(study, 'seed-host:1', { leaseMs: 600_000, number: recs[i].number });
    if (!c) throw new Error(`trial ${recs[i].number} could not be claimed`);
    if ('metrics' in o) await store.completeTrial(c, o.metrics);
    else await store.failTrial(c, o.error);
  }
  return recs.map((r) => r.number);
}

/** A study of `n` trials: mostly random, a few uniform and global baselines, some failed, and (among the `n`) the last-rung trials of a few finalists. */
export async function seedStudyTrials(
  store: Store,
  name: string,
  n: number,
  o: { seed?: number; extra?: Partial<StudyRecord>; batch?: number; finals?: number } = {},
): Promise<DriverLease> {
  const rng = new Rng(o.seed ?? 1);
  await store.createStudy(seedStudy(name, o.extra));
  const driver = await store.acquireDriver(name, 'seed-driver', 3_600_000);
  const batch = o.batch ?? 500;
  // Finals are trials of their own (the last rung's, src/study/finals.ts): `n` counts them too.
  const finals = Math.min(o.finals ?? 3, Math.floor(n / 3));
  const search = n - finals;
  for (let start = 0; start < search; start += batch) {
    const items: SeededTrial[] = [];
    for (let i = start; i < Math.min(search, start + batch); i++) {
      const controller = i % 23 === 3 ? 'uniform' : i % 29 === 5 ? 'global' : 'random';
      const { trial, metrics } = randomTrial(rng, controller);
      items.push({ trial, outcome: i % 17 === 9 ? { error: `evaluation failed: out of memory at trial ${i}` } : { metrics } });
    }
    await addTrials(store, name, driver, items, start);
  }
  // Finalists: the first few complete random trials, fine-tuned a little below their proxy accuracy.
  const done = (await store.listTrials(name, { state: 'complete' })).filter((t) => t.controller === 'random').slice(0, finals);
  for (const t of done) {
    await seedFinal(store, name, t.number, (t.metrics.proxyAccuracy ?? 0) - 0.01, { epochs: 2, seconds: 12.5, driver });
  }
  return driver;
}
