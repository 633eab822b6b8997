import { AutopruneError, ErrorCodes, quote } from './errors.js';

/**
 * The search space: the prunable channel groups of a model.
 * A group is the set of layers whose output channels must be cut together.
 */
export interface GroupSpec {
  /** Stable id, the name of the group's first producer layer (e.g. `stage2.conv1`). */
  readonly id: string;
  /** Channel count of the unpruned model. */
  readonly channels: number;
  /** Layers whose output channels this group owns (producers, BN, depthwise followers). */
  readonly layers: readonly string[];
}

export interface SpaceOptions {
  /** Smallest keep ratio a controller may propose, in (0, 1]. Default 0.25. */
  readonly minKeepRatio: number;
  /** Kept channels are rounded to a multiple of this (hardware prefers 8). Default 1. */
  readonly channelStep: number;
  /** Group ids that are never pruned. */
  readonly skip: readonly string[];
}

export interface SearchSpace {
  readonly groups: readonly GroupSpec[];
  readonly options: SpaceOptions;
}

/**
 * A candidate: channels kept per group, in the order of `space.groups`. Already rounded, so two
 * candidates with the same vector are the same pruned model (the memo key).
 */
export interface Candidate {
  readonly channels: readonly number[];
}

/** Round `ratio * channels` to the step; never below one step (or the full count if smaller), never above full. */
export function roundChannels(ratio: number, channels: number, step: number): number {
  if (!(ratio > 0 && ratio <= 1)) {
    throw new AutopruneError(ErrorCodes.CANDIDATE_INVALID, `Expected keep ratio in (0, 1], got ${quote(ratio)}`);
  }
  if (ratio === 1) return channels;
  const s = Math.max(1, Math.floor(step));
  const rounded = Math.round((ratio * channels) / s) * s;
  return Math.min(channels, Math.max(Math.min(s, channels), rounded));
}

/** Smallest channel count a group may keep under the space options. */
export function minChannels(space: SearchSpace, groupIndex: number): number {
  const g = space.groups[groupIndex];
  if (space.options.skip.includes(g.id)) return g.channels;
  return roundChannels(space.options.minKeepRatio, g.channels, space.options.channelStep);
}

export function isSkipped(space: SearchSpace, groupIndex: number): boolean {
  return space.options.skip.includes(space.groups[groupIndex].id);
}

/** Turn keep ratios (one per group) into a rounded candidate; skipped groups stay full. */
export function candidateFromRatios(space: SearchSpace, ratios: readonly number[]): Candidate {
  if (ratios.length !== space.groups.length) {
    throw new AutopruneError(ErrorCodes.CANDIDATE_INVALID, `Expected ${space.groups.length} keep ratios (one per group), got ${ratios.length}`);
  }
  const channels = space.groups.map((g, i) => {
    const r = ratios[i];
    if (!(r > 0 && r <= 1)) {
      throw new AutopruneError(ErrorCodes.CANDIDATE_INVALID, `Expected \`keepRatio\` of group \`${g.id}\` to be in (0, 1], got ${quote(r)}`);
    }
    if (isSkipped(space, i)) return g.channels;
    return Math.max(minChannels(space, i), roundChannels(r, g.channels, space.options.channelStep));
  });
  return { channels };
}

export function fullCandidate(space: SearchSpace): Candidate {
  return { channels: space.groups.map((g) => g.channels) };
}

/** Keep ratio actually realised per group after rounding. */
export function keepRatios(space: SearchSpace, c: Candidate): number[] {
  return c.channels.map((n, i) => n / space.groups[i].channels);
}

/** Memo key: identical rounded channel vectors are one pruned model. */
export function candidateKey(c: Candidate): string {
  return c.channels.join(',');
}

export function validateCandidate(space: SearchSpace, c: Candidate): void {
  if (c.channels.length !== space.groups.length) {
    throw new AutopruneError(ErrorCodes.CANDIDATE_INVALID, `Expected ${space.groups.length} channel counts (one per group), got ${c.channels.length}`);
  }
  c.channels.forEach((n, i) => {
    const g = space.groups[i];
    if (!Number.isInteger(n) || n < 1 || n > g.channels) {
      throw new AutopruneError(ErrorCodes.CANDIDATE_INVALID, `Expected channels of group \`${g.id}\` to be an integer in [1, ${g.channels}], got ${quote(n)}`);
    }
  });
}

/**
 * Whether a MACs fraction (pruned / base) counts for a FLOPs target: at or under target + window,
 * the window the search accepts candidates in (`<= target` when there is no window). One definition
 * for the search's progress, finalist choice and every report.
 */
export function withinTarget(flopsFraction: number, target: number, window: number | null): boolean {
  // small epsilon: a trial exactly at the limit must count despite float rounding of the fraction
  return flopsFraction <= target + (window ?? 0) + 1e-12;
}
