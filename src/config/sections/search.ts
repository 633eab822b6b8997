/** The `search` section: the controller, targets and budget. */
import { z } from 'zod';
import { CLOCK_EXPECTATION, DURATION_EXPECTATION, tryParseClock, tryParseDuration } from '../duration.js';
import { flag, int, nonNegativeInt, num, positiveInt, positiveNumber, probability, ratio, unitOpen } from './leaves.js';

export const CONTROLLER_NAMES = ['random', 'uniform', 'greedy', 'evolutionary', 'rl', 'global'] as const;

/**
 * Controller specs: one entry per controller in src/controllers/registry.ts. Every option has its
 * default here, so the resolved config (`config show`, the config hash) carries the values the
 * controller runs with; the controllers read these and keep no fallbacks of their own.
 */
export const controllerSchema = z.discriminatedUnion('name', [
  z.strictObject({
    /** EagleEye-style random sampling inside each target's FLOPs window. */
    name: z.literal('random'),
    /** Stop proposing for a target after this many proposals. Default null: no limit (the budget stops). */
    perTarget: positiveInt().nullable().default(null),
  }),
  z.strictObject({
    /** One keep ratio for every group, swept. */
    name: z.literal('uniform'),
    /** Extra evenly spaced ratios in [minKeepRatio, 1) besides one per target. Default 0. */
    steps: nonNegativeInt().default(0),
  }),
  z.strictObject({
    /** NetAdapt (Yang et al., ECCV 2018): per iteration, one candidate per group, the best becomes the next start. */
    name: z.literal('greedy'),
    /** FLOPs cut of the first iteration, as a fraction of the base MACs. Default 0.05. */
    initialReduction: unitOpen().default(0.05),
    /** Each iteration's cut is the previous one's times this, in (0, 1]. Default 0.96. */
    decay: ratio().default(0.96),
    /** `off` ranks by adaptive BN; `chosen` short-fine-tunes the chosen model (an `adapt` trial); `candidates` every candidate (the paper). Default `off`. */
    adapt: z.enum(['off', 'chosen', 'candidates']).default('off'),
  }),
  z.strictObject({
    /** NSGA-II (Deb et al. 2002) on the keep-ratio vector, each child repaired into a FLOPs window. */
    name: z.literal('evolutionary'),
    /** Individuals per generation, >= 4. Default 40. */
    population: int('an integer >= 4', (v) => v >= 4).default(40),
    /** Probability that a pair is recombined (SBX). Default 0.9. */
    crossoverProbability: probability().default(0.9),
    /** SBX distribution index. Default 15. */
    crossoverEta: positiveNumber().default(15),
    /** Polynomial-mutation distribution index. Default 20. */
    mutationEta: positiveNumber().default(20),
    /** Third objective, minimised, when observations carry it. Default null: none (accuracy and FLOPs only). */
    thirdObjective: z.enum(['latency', 'params']).nullable().default(null),
  }),
  z.strictObject({
    /** AMC (He et al., ECCV 2018): DDPG actor-critic choosing a keep ratio layer by layer. */
    name: z.literal('rl'),
    /** Episodes of random actions before the policy learns. Default 100 (AMC). */
    warmup: nonNegativeInt().default(100),
    /** Episodes after the warm-up, then done. Default 300. */
    episodes: positiveInt().default(300),
    /** `error` (AMC's FLOPs-constrained -error) or `error-log-flops` (-error * log FLOPs). Default `error`. */
    reward: z.enum(['error', 'error-log-flops']).default('error'),
    /** Units of both hidden layers of the actor and the critic. Default 300 (AMC). */
    hidden: positiveInt().default(300),
    /** Transitions per DDPG update. Default 64 (AMC). The other DDPG settings keep AMC's values: lr 1e-4/1e-3, tau 0.01, noise 0.5 x 0.95^episode. */
    batchSize: positiveInt().default(64),
  }),
  z.strictObject({
    /** Torch-Pruning-style global threshold on per-group normalised channel importance. */
    name: z.literal('global'),
    /** How scores are normalised within a group: by their `mean`, `max` or `sum`. Default `mean`. */
    normalize: z.enum(['mean', 'max', 'sum']).default('mean'),
  }),
]);

const TARGET_EXPECTATION = 'a FLOPs fraction in (0, 1] or `{ latency: f }` with f in (0, 1]';

/** A target as written: a FLOPs fraction, or a fraction of the base's measured latency. */
export type SearchTarget = number | { readonly latency: number };

/** The fraction of a target, whichever its kind. */
export function targetFraction(t: SearchTarget): number {
  return typeof t === 'number' ? t : t.latency;
}

/** The fractions of a study's targets, in order. */
export function targetFractions(targets: readonly SearchTarget[]): number[] {
  return targets.map(targetFraction);
}

/** `50%, 30%` or `latency 50%, latency 30%`, for messages. */
export function describeTargets(targets: readonly SearchTarget[]): string {
  return targets.map((t) => (typeof t === 'number' ? `${t * 100}%` : `latency ${t.latency * 100}%`)).join(', ');
}

/** What a study's targets constrain: MACs (`flops`) or predicted latency (`latency`). */
export function targetMetric(targets: readonly SearchTarget[]): 'flops' | 'latency' {
  return targets.some((t) => typeof t !== 'number') ? 'latency' : 'flops';
}

const budgetSchema = z.strictObject({
  /** Maximum number of evaluated trials, >= 1. Default 40. */
  trials: positiveInt().default(40),
  /** Wall-clock limit, e.g. `8h`, `90m`, `1h30m` (see duration.ts). Default: none. */
  time: z
    .string({ error: DURATION_EXPECTATION })
    .refine((s) => tryParseDuration(s) !== null, {
      error: (iss) =>
        String(iss.input).trim().startsWith('-')
          ? `${DURATION_EXPECTATION.replace('a duration', 'a positive duration')} (a time budget cannot be negative)`
          : DURATION_EXPECTATION,
    })
    .optional(),
  /** Stop at this local clock time, `HH:MM` (next occurrence). Default: none. */
  until: z
    .string({ error: CLOCK_EXPECTATION })
    .refine((s) => tryParseClock(s) !== null, { error: CLOCK_EXPECTATION })
    .optional(),
});

export const searchSchema = z.strictObject({
  /** Which controller proposes candidates. Default `{ name: random }`. */
  controller: controllerSchema.prefault({ name: 'random' }),
  /**
   * Evaluate the uniform sweep (same keep ratio everywhere, one per target) before the controller's
   * own proposals, so every report has the baseline to compare against. Counts against the trial
   * budget. Ignored when the controller is `uniform` itself. Default true.
   */
  baseline: flag().default(true),
  /**
   * `baselines`: the baseline sweep is uniform then global (magnitude-threshold pruning, one per
   * target), and the controller asks nothing until every baseline result is in, so it starts from
   * the incumbents: evolutionary's first population is bred from them, rl's replay holds them.
   * Needs `baseline: true`; greedy (which starts from the unpruned model) refuses it. Default `none`.
   */
  warmStart: z.enum(['none', 'baselines'], { error: 'one of: none, baselines' }).default('none'),
  /**
   * Targets, each a fraction in (0, 1] of the base model's MACs (`0.5`) or of its latency measured on
   * `evaluation.latency.engine` (`{ latency: 0.5 }`, predicted from the latency table,
   * docs/latency.md); one kind per study. Default [0.5].
   */
  targets: z
    .array(z.union([ratio(TARGET_EXPECTATION), z.strictObject({ latency: ratio('a latency fraction in (0, 1]') })], { error: TARGET_EXPECTATION }), {
      error: `a list of targets, each ${TARGET_EXPECTATION}`,
    })
    .min(1, { error: 'at least one target' })
    .refine((t) => t.every((x) => typeof x === 'number') || t.every((x) => typeof x !== 'number'), {
      error: 'targets of one kind: all FLOPs fractions or all `{ latency: f }`',
    })
    .refine((t) => new Set(t.map(targetFraction)).size === t.length, { error: 'distinct targets' })
    .default([0.5]),
  /** Accepted half-width around each target, as a fraction of the base's MACs (or latency), in (0, 0.5). Default 0.03. */
  window: num('a number in (0, 0.5)', (v) => v > 0 && v < 0.5).default(0.03),
  /** When to stop: whichever limit comes first. Default `{ trials: 40 }`. */
  budget: budgetSchema.prefault({}),
});

/** A controller spec as written (options may be omitted). */
export type ControllerInput = z.input<typeof controllerSchema>;
/** A controller spec with every option resolved. */
export type ResolvedControllerSpec = z.output<typeof controllerSchema>;
/** The resolved options of controller `N` (its spec without `name`). */
export type ControllerOptionsOf<N extends ResolvedControllerSpec['name']> = Omit<Extract<ResolvedControllerSpec, { name: N }>, 'name'>;

/** The spec with its defaults filled (what resolveConfig does for `search.controller`); idempotent. */
export function resolveControllerSpec<S extends ControllerInput>(spec: S): Extract<ResolvedControllerSpec, { name: S['name'] }> {
  return controllerSchema.parse(spec) as Extract<ResolvedControllerSpec, { name: S['name'] }>;
}

/** Controller `name`'s options as written, with every omitted one at its default. */
export function controllerOptions<N extends ResolvedControllerSpec['name']>(name: N, given: Partial<ControllerOptionsOf<N>> = {}): ControllerOptionsOf<N> {
  const { name: _, ...options } = controllerSchema.parse({ ...given, name });
  return options as unknown as ControllerOptionsOf<N>;
}
