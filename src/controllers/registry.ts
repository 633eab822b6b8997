import type { ControllerSpec } from '../config/schema.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { WithBaseline } from './baseline.js';
import { EvolutionaryController } from './evolutionary.js';
import { GlobalController } from './global.js';
import { GreedyController } from './greedy.js';
import { RandomController } from './random.js';
import { RlController } from './rl.js';
import type { Controller, ControllerContext } from './types.js';
import { UniformController } from './uniform.js';

type SpecOf<N extends ControllerSpec['name']> = Extract<ControllerSpec, { readonly name: N }>;
type Factories = { readonly [N in ControllerSpec['name']]: (ctx: ControllerContext, spec: SpecOf<N>) => Controller };

/**
 * Controller factories by config name, one entry each (STYLE.md principle 6: registries are
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
 * The controller of a study: the configured one, preceded by the uniform baseline sweep unless
 * `baseline` is false or the controller is `uniform` itself.
 */
export function createStudyController(spec: ControllerSpec, ctx: ControllerContext, baseline: boolean): Controller {
  const main = createController(spec, ctx);
  return baseline && spec.name !== 'uniform' ? new WithBaseline(controllers.uniform(ctx, { name: 'uniform' }), main) : main;
}

/** Build the controller a resolved config asks for. */
export function createController(spec: ControllerSpec, ctx: ControllerContext): Controller {
  if (!Object.hasOwn(controllers, spec.name)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Unknown controller ${quote(spec.name)} (expected one of: ${Object.keys(controllers).join(', ')})`);
  }
  const make = controllers[spec.name] as (ctx: ControllerContext, spec: ControllerSpec) => Controller;
  return make(ctx, spec);
}
