import { z } from 'zod';

/**
 * The config file's schema, one file per section in sections/ (grouped by concern; every option documents its
 * default). Strict: an unknown key anywhere is an error, so a typo never silently falls back to a
 * default. Messages given here are the *expectation* half of an error line; load.ts adds the file,
 * the field path and the bad value ("`space.minKeepRatio` expected a number in (0, 1], got 1.3").
 *
 * Paths (data.dir, model.checkpoint, train.out, run.store) are written as the user wrote them here;
 * resolveConfig() makes them absolute against the current working directory.
 */
import { dataSchema } from './sections/data.js';
import { evaluationSchema } from './sections/evaluation.js';
import { modelSchema } from './sections/model.js';
import { type PROXY_ENGINES, runSchema, type TRAIN_ENGINES } from './sections/run.js';
import { searchSchema } from './sections/search.js';
import { spaceSchema } from './sections/space.js';
import { trainSchema } from './sections/train.js';

export { DATASETS, syntheticSchema } from './sections/data.js';
export { IMPORTANCE_CRITERIA } from './sections/evaluation.js';
export { ZOO_MODELS } from './sections/model.js';
export { BACKENDS, PROXY_ENGINES, TRAIN_ENGINES, WORKER_MODES } from './sections/run.js';
export { CONTROLLER_NAMES, type ControllerInput, controllerOptions, type ResolvedControllerSpec, resolveControllerSpec } from './sections/search.js';
export { OPTIMIZERS } from './sections/train.js';

export const configSchema = z.strictObject(
  {
    /** Study name; becomes a folder name, so [A-Za-z0-9._-]+. Required. */
    name: z
      .string({ error: 'a study name of letters, digits, `.`, `_`, `-`' })
      .regex(/^[A-Za-z0-9._-]+$/, { error: 'a study name of letters, digits, `.`, `_`, `-`' })
      .refine((s) => s !== '.' && s !== '..', { error: 'a study name other than `.` and `..`' }),
    data: dataSchema.prefault({}),
    model: modelSchema,
    train: trainSchema.prefault({}),
    space: spaceSchema.prefault({}),
    search: searchSchema.prefault({}),
    evaluation: evaluationSchema.prefault({}),
    run: runSchema.prefault({}),
  },
  { error: (iss) => (iss.code === 'invalid_type' ? 'a mapping with keys name, model, ...' : undefined) },
);

/** What a user may write (defaults optional). */
export type UserConfig = z.input<typeof configSchema>;
/** What the schema yields before resolveConfig() fills derived defaults and absolute paths. */
export type ParsedConfig = z.output<typeof configSchema>;

export type DeepReadonly<T> = T extends readonly unknown[]
  ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * The fully resolved config: every default filled, paths absolute, `train.out` derived from the
 * name, `data.synthetic` present exactly when `data.dataset` is `synthetic`. Deeply frozen.
 */
export type ResolvedConfig = DeepReadonly<
  Omit<ParsedConfig, 'train' | 'run'> & {
    train: Omit<ParsedConfig['train'], 'out'> & { out: string };
    run: Omit<ParsedConfig['run'], 'engine'> & { engine: EngineStages };
  }
>;

export interface EngineStages {
  readonly proxy: (typeof PROXY_ENGINES)[number];
  readonly train: (typeof TRAIN_ENGINES)[number];
}

/** `run.engine` as one name or per stage -> per stage. */
export function engineStages(e: ParsedConfig['run']['engine']): EngineStages {
  if (typeof e !== 'string') return e;
  return { proxy: e, train: e === 'onnxruntime' ? 'auto' : e };
}

export type ControllerSpec = ResolvedConfig['search']['controller'];
