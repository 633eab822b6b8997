import { type ControllerInput, type ResolvedControllerSpec, resolveControllerSpec } from '../config/sections/search.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { WithBaseline } from './baseline.js';
import { EvolutionaryController } from './evolutionary.js';
import { GlobalController } from './global.js';
import { GreedyController } from './greedy.js';
import { RandomController } from './random.js';
import { RlController } from './rl.js';
import type { Controller, ControllerContext } from './types.js';
import { UniformController } from './uniform.js';

type SpecOf<N extends ResolvedControllerSpec['name']> = Extract<ResolvedControllerSpec, { readonly name: N }>;
type Factories = { readonly [N in ResolvedControllerSpec['name']]: (ctx: ControllerContext, spec: SpecOf<N>) => Controller };

/**
 * Controller factories by config name, one entry each (registries are
 * `as const` objects); the spec's options are the controller's options, minus `name`.
 */
export const controllers = {
  random: (ctx, spec) => new RandomController(ctx, spec),
  uniform: (ctx, spec) => new UniformController(ctx, spec),
  greedy: (ctx, spec) => new GreedyController(ctx, spec),
  evolutionary: (ctx, spec) => new EvolutionaryController(ctx, spec),
  rl: (ctx, spec) => new RlController(ctx, spec),
  global: (ctx, spec) => new GlobalController(ctx, spec),
} as const satisfies Factories;

export type ControllerName = keyof typeof controllers;

/**
 * The controller of a study: the configured one, preceded by the baseline sweep unless `baseline`
 * is false or the controller is `uniform` itself. The sweep is uniform; with `warmStart:
 * 'baselines'` uniform then global, and the main controller waits for their results (WithBaseline).
 */
export function createStudyController(spec: ControllerInput, ctx: ControllerContext, baseline: boolean, warmStart: 'none' | 'baselines' = 'none'): Controller {
  const main = createController(spec, ctx);
  if (!baseline || spec.name === 'uniform') return main;
  if (warmStart === 'none') return new WithBaseline(createController({ name: 'uniform' }, ctx), main);
  return new WithBaseline([createController({ name: 'uniform' }, ctx), createController({ name: 'global' }, ctx)], main, true);
}

/** Build the controller a config asks for; omitted options take the schema's defaults (a resolved spec passes unchanged). */
export function createController(spec: ControllerInput, ctx: ControllerContext): Controller {
  if (!Object.hasOwn(controllers, spec.name)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Unknown controller ${quote(spec.name)} (expected one of: ${Object.keys(controllers).join(', ')})`);
  }
  const make = controllers[spec.name] as (ctx: ControllerContext, spec: ResolvedControllerSpec) => Controller;
  return make(ctx, resolveControllerSpec(spec));
}
