import type { ControllerSpec } from '../config/schema.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { WithBaseline } from './baseline.js';
import { RandomController } from './random.js';
import type { Controller, ControllerContext } from './types.js';
import { UniformController } from './uniform.js';

type SpecOf<N extends ControllerSpec['name']> = Extract<ControllerSpec, { readonly name: N }>;

/** Controller factories by config name (STYLE.md principle 6: registries are `as const` objects). */
export const controllers = {
  random: (ctx: ControllerContext, spec: SpecOf<'random'>): Controller =>
    new RandomController(ctx, { perTarget: spec.perTarget }),
  uniform: (ctx: ControllerContext, spec: SpecOf<'uniform'>): Controller =>
    new UniformController(ctx, { steps: spec.steps }),
} as const;

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
  switch (spec.name) {
    case 'random':
      return controllers.random(ctx, spec);
    case 'uniform':
      return controllers.uniform(ctx, spec);
    default: {
      const unknown: never = spec;
      throw new AutopruneError(
        ErrorCodes.INVALID_ARGUMENT,
        `Unknown controller ${quote((unknown as { name: unknown }).name)} (expected one of: ${Object.keys(controllers).join(', ')})`,
      );
    }
  }
}
