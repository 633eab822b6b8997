/**
 * Trial identity and lineage. A trial is its candidate, its stage and the weights it starts from:
 * identical proxy candidates of the base model are evaluated once (the memo), while a child of an
 * adapted parent is never confused with the same channels cut from the base model.
 */
import { type Candidate, candidateKey } from '../core/space.js';
import type { TrialStage } from '../core/types.js';
import type { TrialRecord } from '../store/types.js';

/**
 * `8,16,24` for a proxy trial of the base model (the key every earlier study stored), else
 * `<stage>:<parent trial or base>:8,16,24`.
 */
export function trialKey(candidate: Candidate, stage: TrialStage = 'proxy', parent: number | null = null): string {
  const channels = candidateKey(candidate);
  return stage === 'proxy' && parent === null ? channels : `${stage}:${parent ?? 'base'}:${channels}`;
}

/** Where a trial's artifacts live under the study's artifact folder (store.artifactDir). */
export const artifactPaths = {
  /** Adapted weights of an `adapt` trial (tfjs LayersModel folder): what its children start from. */
  trialModel: (studyDir: string, trial: number): string => `${studyDir}/trials/${trial}/model`,
  finalistModel: (studyDir: string, trial: number): string => `${studyDir}/finalists/trial-${trial}`,
  /** The base model every worker prunes (a copy of `model.checkpoint`). */
  baseModel: (studyDir: string): string => `${studyDir}/base`,
};

/** The chain of ancestors of a trial, nearest first (for reports and checks). */
export function ancestors(trial: TrialRecord, byNumber: ReadonlyMap<number, TrialRecord>): number[] {
  const out: number[] = [];
  for (let p = trial.parent; p !== null; p = byNumber.get(p)?.parent ?? null) {
    if (out.includes(p)) break; // defensive: stores refuse cycles (a parent is always an earlier trial)
    out.push(p);
  }
  return out;
}
