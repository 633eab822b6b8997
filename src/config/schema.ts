import { z } from 'zod';
import { CLOCK_EXPECTATION, DURATION_EXPECTATION, tryParseClock, tryParseDuration } from './duration.js';

/**
 * The config file's schema (STYLE.md principle 8: grouped by concern; every option documents its
 * default). Strict: an unknown key anywhere is an error, so a typo never silently falls back to a
 * default. Messages given here are the *expectation* half of an error line; load.ts adds the file,
 * the field path and the bad value ("`space.minKeepRatio` expected a number in (0, 1], got 1.3").
 *
 * Paths (data.dir, model.checkpoint, train.out, run.store) are written as the user wrote them here;
 * resolveConfig() makes them absolute against the current working directory.
 */

export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'synthetic'] as const;
export const ZOO_MODELS = ['plain-cnn', 'resnet-20', 'mobilenet-v2-tiny'] as const;
export const OPTIMIZERS = ['adam', 'sgd'] as const;
export const IMPORTANCE_CRITERIA = ['l1', 'l2', 'bn-gamma', 'random'] as const;
export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export const WORKER_MODES = ['threads', 'inline', 'none'] as const;
/** Engines per stage: `auto` = the fastest that loads (onnxruntime for the proxy, else tfjs). */
export const PROXY_ENGINES = ['auto', 'onnxruntime', 'tfjs'] as const;
/** `auto` trains on libtorch when its binding loaded, else on tfjs. */
export const TRAIN_ENGINES = ['auto', 'libtorch', 'tfjs'] as const;
const ENGINE_EXPECTATION = `one of ${PROXY_ENGINES.join(', ')}, or a mapping { proxy, train } naming an engine per stage`;
export const CONTROLLER_NAMES = ['random', 'uniform', 'greedy', 'evolutionary', 'rl', 'global'] as const;

/** Training-set sizes of the real datasets, to check `data.validationSize` against. */
const TRAIN_SIZES = { 'fashion-mnist': 60_000, mnist: 60_000, cifar10: 50_000 } as const;

// ---------------------------------------------------------------------------------------------
// Leaf helpers: one expectation string for both the type check and the range check.

function num(expect: string, ok: (v: number) => boolean = () => true) {
  return z.number({ error: expect }).refine(ok, { error: expect });
}
function int(expect: string, ok: (v: number) => boolean = () => true) {
  return num(expect, (v) => Number.isInteger(v) && ok(v));
}
const positiveInt = (expect = 'an integer >= 1') => int(expect, (v) => v >= 1);
const nonNegativeInt = (expect = 'an integer >= 0') => int(expect, (v) => v >= 0);
const positiveNumber = (expect = 'a number > 0') => num(expect, (v) => v > 0);
const ratio = (expect = 'a number in (0, 1]') => num(expect, (v) => v > 0 && v <= 1);
const pathString = () => z.string({ error: 'a path' }).min(1, { error: 'a non-empty path' });
const flag = () => z.boolean({ error: 'true or false' });

// ---------------------------------------------------------------------------------------------

export const syntheticSchema = z.strictObject({
  /** Image shape [height, width, channels]. Default [28, 28, 1]. */
  shape: z
    .tuple([positiveInt(), positiveInt(), positiveInt()], { error: 'three positive integers [h, w, c]' })
    .default([28, 28, 1]),
  /** Number of classes, 2..256. Default 10. */
  classes: int('an integer in [2, 256]', (v) => v >= 2 && v <= 256).default(10),
  /** Training images (the validation split is carved from these). Default 1000. */
  train: positiveInt().default(1000),
  /** Test images. Default 200. */
  test: positiveInt().default(200),
});

const dataSchema = z
  .strictObject({
    /** Which dataset. Default `fashion-mnist`. */
    dataset: z.enum(DATASETS).default('fashion-mnist'),
    /** Folder with the dataset files. Default: chosen by the data module (e.g. /usr/share/datasets/<name>). */
    dir: pathString().optional(),
    /** Images carved from the training split for validation (the search sees only these). Default 5000. */
    validationSize: positiveInt().default(5000),
    /** Use only the first N images of the (remaining) training split, for quick runs. Default: all. */
    trainLimit: positiveInt().optional(),
    /** Synthetic data settings; only with `dataset: synthetic` (then every field has a default). */
    synthetic: syntheticSchema.optional(),
  })
  .superRefine((d, ctx) => {
    if (d.synthetic !== undefined && d.dataset !== 'synthetic') {
      ctx.addIssue({ code: 'custom', path: ['synthetic'], message: 'only with `dataset: synthetic` (remove it)' });
    }
    const trainSize = d.dataset === 'synthetic' ? (d.synthetic?.train ?? 1000) : TRAIN_SIZES[d.dataset];
    if (d.validationSize >= trainSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['validationSize'],
        params: { resolvedValue: d.validationSize },
        message: `an integer below the ${trainSize} training images of \`${d.dataset}\``,
      });
    }
  });

const modelSchema = z
  .strictObject({
    /** Architecture from the built-in zoo (required by `autoprune train`; describes a checkpoint's origin). No default. */
    zoo: z.enum(ZOO_MODELS).optional(),
    /** Width multiplier of the zoo architecture, > 0. Default 1. */
    width: positiveNumber().default(1),
    /** The trained base model: a tfjs model.json (required by `autoprune search`). No default. */
    checkpoint: pathString().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.zoo === undefined && m.checkpoint === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `\`zoo\` (one of ${ZOO_MODELS.join(', ')}) and/or \`checkpoint\` (a tfjs model.json)`,
      });
    }
  });

const trainSchema = z.strictObject({
  /** Training epochs of the base model. Default 3. */
  epochs: positiveInt().default(3),
  /** Default 64. */
  batchSize: positiveInt().default(64),
  /** Default 0.001. */
  learningRate: positiveNumber().default(0.001),
  /** Default `adam`. */
  optimizer: z.enum(OPTIMIZERS).default('adam'),
  /** SGD momentum, in [0, 1). Default 0.9. */
  momentum: num('a number in [0, 1)', (v) => v >= 0 && v < 1).default(0.9),
  /** BatchNorm moving-average momentum, in (0, 1). Default 0.9 (Keras' 0.99 looks bad after short training). */
  bnMomentum: num('a number in (0, 1)', (v) => v > 0 && v < 1).default(0.9),
  /** Coupled L2 weight decay on kernels (not biases or BN), >= 0. Default 0. */
  weightDecay: num('a number >= 0', (v) => v >= 0).default(0),
  /** Random crop (zero padding of height/8 pixels) + horizontal flip while training. Default false. */
  augment: flag().default(false),
  /** Where the trained model is saved. Default `experiments/<name>/base`. */
  out: pathString().optional(),
});

const spaceSchema = z.strictObject({
  /** Smallest keep ratio per group, in (0, 1]. Default 0.25. */
  minKeepRatio: ratio().default(0.25),
  /** Kept channels are rounded to a multiple of this (hardware likes 8). Default 1. */
  channelStep: positiveInt().default(1),
  /** Group ids never pruned. Default []. */
  skip: z.array(z.string({ error: 'a group id' }), { error: 'a list of group ids' }).default([]),
});

const probability = (expect = 'a number in [0, 1]') => num(expect, (v) => v >= 0 && v <= 1);
const unitOpen = (expect = 'a number in (0, 1)') => num(expect, (v) => v > 0 && v < 1);

/** Controller specs: one entry per controller in src/controllers/registry.ts. Omitted options take the documented default. */
const controllerSchema = z.discriminatedUnion(
  'name',
  [
    z.strictObject({
      /** EagleEye-style random sampling inside each target's FLOPs window. */
      name: z.literal('random'),
      /** Stop proposing for a target after this many proposals. Default: no limit (the budget stops). */
      perTarget: positiveInt().optional(),
    }),
    z.strictObject({
      /** One keep ratio for every group, swept. */
      name: z.literal('uniform'),
      /** Extra evenly spaced ratios in [minKeepRatio, 1) besides one per target. Default 0. */
      steps: nonNegativeInt().optional(),
    }),
    z.strictObject({
      /** NetAdapt (Yang et al., ECCV 2018): per iteration, one candidate per group, the best becomes the next start. */
      name: z.literal('greedy'),
      /** FLOPs cut of the first iteration, as a fraction of the base MACs. Default 0.05. */
      initialReduction: unitOpen().optional(),
      /** Each iteration's cut is the previous one's times this, in (0, 1]. Default 0.96. */
      decay: ratio().optional(),
      /** `off` ranks by adaptive BN; `chosen` short-fine-tunes the chosen model (an `adapt` trial); `candidates` every candidate (the paper). Default `off`. */
      adapt: z.enum(['off', 'chosen', 'candidates']).optional(),
    }),
    z.strictObject({
      /** NSGA-II (Deb et al. 2002) on the keep-ratio vector, each child repaired into a FLOPs window. */
      name: z.literal('evolutionary'),
      /** Individuals per generation, >= 4. Default 40. */
      population: int('an integer >= 4', (v) => v >= 4).optional(),
      /** Probability that a pair is recombined (SBX). Default 0.9. */
      crossoverProbability: probability().optional(),
      /** SBX distribution index. Default 15. */
      crossoverEta: positiveNumber().optional(),
      /** Polynomial-mutation distribution index. Default 20. */
      mutationEta: positiveNumber().optional(),
      /** Third objective, minimised, when observations carry it. Default: none (accuracy and FLOPs only). */
      thirdObjective: z.enum(['latency', 'params']).optional(),
    }),
    z.strictObject({
      /** AMC (He et al., ECCV 2018): DDPG agent choosing a keep ratio layer by layer. */
      name: z.literal('rl'),
      /** Episodes of random actions before the agent learns. Default 100 (AMC). */
      warmup: nonNegativeInt().optional(),
      /** Episodes after the warm-up, then done. Default 300. */
      episodes: positiveInt().optional(),
      /** `error` (AMC's FLOPs-constrained -error) or `error-log-flops` (-error * log FLOPs). Default `error`. */
      reward: z.enum(['error', 'error-log-flops']).optional(),
      /** Units of both hidden layers of the actor and the critic. Default 300 (AMC). */
      hidden: positiveInt().optional(),
      /** Seed-independent DDPG settings keep AMC's values: lr 1e-4/1e-3, batch 64, tau 0.01, noise 0.5 x 0.95^episode. */
      batchSize: positiveInt().optional(),
    }),
    z.strictObject({
      /** Torch-Pruning-style global threshold on per-group normalised channel importance. */
      name: z.literal('global'),
      /** How scores are normalised within a group: by their `mean`, `max` or `sum`. Default `mean`. */
      normalize: z.enum(['mean', 'max', 'sum']).optional(),
    }),
  ],
);

const budgetSchema = z.strictObject({
  /** Maximum number of evaluated trials, >= 1. Default 40. */
  trials: positiveInt().default(40),
  /** Wall-clock limit, e.g. `8h`, `90m`, `1h30m` (see duration.ts). Default: none. */
  time: z
    .string({ error: DURATION_EXPECTATION })
    .refine((s) => tryParseDuration(s) !== null, { error: DURATION_EXPECTATION })
    .optional(),
  /** Stop at this local clock time, `HH:MM` (next occurrence). Default: none. */
  until: z
    .string({ error: CLOCK_EXPECTATION })
    .refine((s) => tryParseClock(s) !== null, { error: CLOCK_EXPECTATION })
    .optional(),
});

const searchSchema = z.strictObject({
  /** Which controller proposes candidates. Default `{ name: random }`. */
  controller: controllerSchema.prefault({ name: 'random' }),
  /**
   * Evaluate the uniform sweep (same keep ratio everywhere, one per target) before the controller's
   * own proposals, so every report has the baseline to compare against. Counts against the trial
   * budget. Ignored when the controller is `uniform` itself. Default true.
   */
  baseline: flag().default(true),
  /** FLOPs targets as fractions of the base model's MACs, each in (0, 1]. Default [0.5]. */
  targets: z
    .array(ratio('a FLOPs fraction in (0, 1]'), { error: 'a list of FLOPs fractions in (0, 1]' })
    .min(1, { error: 'at least one FLOPs target' })
    .refine((t) => new Set(t).size === t.length, { error: 'distinct FLOPs targets' })
    .default([0.5]),
  /** Accepted half-width around each target, as a fraction of base MACs, in (0, 0.5). Default 0.03. */
  window: num('a number in (0, 0.5)', (v) => v > 0 && v < 0.5).default(0.03),
  /** When to stop: whichever limit comes first. Default `{ trials: 40 }`. */
  budget: budgetSchema.prefault({}),
});

const evaluationSchema = z.strictObject({
  /** Channel importance criterion (which channels a cut keeps). Default `l1`. */
  importance: z.enum(IMPORTANCE_CRITERIA).default('l1'),
  /**
   * BatchNorm re-calibration on training batches (EagleEye's adaptive BN). Default 10 batches of
   * 128: on the ResNet-20 base, 20 candidates ranked by it agreed with the 50-batch proxy at
   * Kendall τ 0.997 (1.0 and 0.986 within each target), and with fine-tuned accuracy as well as
   * the 50-batch proxy did, at half its cost (bench/proxy-fidelity.ts, README "Engines").
   */
  calibration: z
    .strictObject({
      /** Default 10. */
      batches: positiveInt().default(10),
      /** Default 128. */
      batchSize: positiveInt().default(128),
    })
    .prefault({}),
  /** Proxy accuracy on the validation split. */
  validation: z
    .strictObject({
      /** Evaluate on the first N validation images only. Default: all. */
      limit: positiveInt().optional(),
    })
    .prefault({}),
  /** Pareto finalists: fine-tuned, then scored on the test split. */
  finalists: z
    .strictObject({
      /** How many (0 = skip this phase). Default 3. */
      count: nonNegativeInt().default(3),
      /** Fine-tuning epochs (0 = score without fine-tuning). Default 1. */
      epochs: nonNegativeInt().default(1),
      /** Default 64. */
      batchSize: positiveInt().default(64),
      /** Default 0.0005. */
      learningRate: positiveNumber().default(0.0005),
      /** Fine-tune on at most this many batches per epoch (a budget for quick runs). Default: whole epoch. */
      batchesPerEpoch: positiveInt().optional(),
    })
    .prefault({}),
  /**
   * Stage `adapt` (NetAdapt's short fine-tune, scored on validation), for controllers that ask for
   * it; the adapted weights are kept so child trials can start from them.
   */
  adapt: z
    .strictObject({
      /** Default 1. */
      epochs: positiveInt().default(1),
      /** Batches per epoch. Default 20. */
      batchesPerEpoch: positiveInt().default(20),
      /** Default 64. */
      batchSize: positiveInt().default(64),
      /** Default 0.0005. */
      learningRate: positiveNumber().default(0.0005),
    })
    .prefault({}),
  /** Inference latency measurement. */
  latency: z
    .strictObject({
      /** Default 32. */
      batchSize: positiveInt().default(32),
      /** Timed runs after one warm-up (the median is reported). Default 5. */
      runs: positiveInt().default(5),
    })
    .prefault({}),
});

const runSchema = z.strictObject({
  /** Candidates evaluated at once, 1..16. Default 1. */
  concurrency: int('an integer in [1, 16]', (v) => v >= 1 && v <= 16).default(1),
  /** tfjs backend: `auto` = tensorflow (tfjs-node) when installed, else wasm, else cpu. Default `auto`. */
  backend: z.enum(BACKENDS).default('auto'),
  /** Seed of every random choice (controller, data order, synthetic data). Default 0. */
  seed: int('an integer in [0, 4294967295]', (v) => v >= 0 && v <= 0xffffffff).default(0),
  /** SQLite file holding all studies, or a postgres:// URL (studies shared by several hosts). Default `experiments/autoprune.db`. */
  store: pathString().default('experiments/autoprune.db'),
  /**
   * Which engine runs each stage: `proxy` (BN re-calibration, validation accuracy, latency) and
   * `train` (base model, finalists). One name sets every stage that engine can run (onnxruntime does
   * not train, so `onnxruntime` leaves `train` on `auto`). Default `auto` for both.
   */
  engine: z
    .union(
      [
        z.enum(PROXY_ENGINES),
        z.strictObject({ proxy: z.enum(PROXY_ENGINES, { error: `one of ${PROXY_ENGINES.join(', ')}` }).default('auto'), train: z.enum(TRAIN_ENGINES, { error: `one of ${TRAIN_ENGINES.join(', ')}` }).default('auto') }),
      ],
      { error: ENGINE_EXPECTATION },
    )
    .default('auto'),
  /**
   * Evaluate in worker threads, in the main thread (debugging, tests), or `none`: this process only
   * drives, `autoprune worker` processes evaluate. Default `threads`.
   */
  workers: z.enum(WORKER_MODES).default('threads'),
  /**
   * `autoprune worker` processes (any host) expected to work for this study: the driver keeps this
   * many more trials queued than its own workers take. Default 0.
   */
  remoteWorkers: int('an integer in [0, 1024]', (v) => v >= 0 && v <= 1024).default(0),
  /** Stop the study when this many trials in a row failed (the last error is shown). Default 5. */
  maxConsecutiveFailures: positiveInt().default(5),
  /**
   * A worker holds a trial by a lease it renews every third of this; a worker silent this long
   * (dead, hung, partitioned) loses the trial, which is re-queued. Seconds, >= 1. Default 60.
   */
  leaseSeconds: int('an integer number of seconds >= 1', (v) => v >= 1).default(60),
  /** Claims per trial before a trial whose lease keeps expiring is failed. Default 3. */
  maxAttempts: positiveInt().default(3),
});

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
