/** The `evaluation` section: how a candidate is scored at each stage. */
import { z } from 'zod';
import { flag, nonNegativeInt, num, positiveInt, positiveNumber, probability, ratio } from './leaves.js';
import { OPTIMIZERS } from './train.js';

export const IMPORTANCE_CRITERIA = ['l1', 'l2', 'bn-gamma', 'random'] as const;

/**
 * The fine-tune recipe as written. The learning rate follows a cosine from `learningRate` to 0 over
 * each fine-tune's own steps (src/evaluators/recipe.ts).
 */
export const finetuneSchema = z.strictObject({
  /** Default 64. */
  batchSize: positiveInt().default(64),
  /** Peak learning rate. Default 0.0005. */
  learningRate: positiveNumber().default(0.0005),
  /** Default: `train.optimizer`. */
  optimizer: z.enum(OPTIMIZERS).optional(),
  /** SGD momentum, in [0, 1). Default: `train.momentum`. */
  momentum: num('a number in [0, 1)', (v) => v >= 0 && v < 1).optional(),
  /** Coupled L2 weight decay on kernels, >= 0. Default: `train.weightDecay`. */
  weightDecay: num('a number >= 0', (v) => v >= 0).optional(),
  /** Random crop + horizontal flip. Default: `train.augment`. */
  augment: flag().optional(),
  /** Stop each epoch after this many batches (a budget for quick runs). Default: whole epochs. */
  batchesPerEpoch: positiveInt().optional(),
  /**
   * Knowledge distillation from the unpruned base model (Hinton et al. 2015): each step's loss is
   * (1 − alpha)·CE(student, labels) + alpha·T²·KL(softmax(teacher / T) ‖ softmax(student / T)),
   * the teacher's logits computed on libtorch, in inference mode, on the batch the student sees
   * (docs/finetune.md). Trains on libtorch only: refused with `run.engine.train: tfjs`. An A/B
   * switch, not measured to help yet. Default: off (absent).
   */
  distill: z
    .strictObject({
      /** Softmax temperature T, > 0. Default 4. */
      temperature: positiveNumber().default(4),
      /** Weight of the distillation term, in [0, 1] (0 = plain cross entropy). Default 0.9. */
      alpha: probability().default(0.9),
    })
    .optional(),
});

/** A rung's fine-tune length: `steps` optimizer steps, or `epochs` epochs (each capped by `finetune.batchesPerEpoch`). */
const rungLengthSchema = z.union([z.strictObject({ steps: positiveInt() }), z.strictObject({ epochs: nonNegativeInt() })], {
  error: '`{ steps: N }` (N >= 1) or `{ epochs: N }` (N >= 0)',
});

/** One rung after the proxy: which trials it admits and how long it fine-tunes them. */
export const rungSchema = z.strictObject({
  /** Admit the best `keep` fraction, in (0, 1], of the rung before, per target. Required. */
  keep: ratio(),
  /**
   * Admit at most this many per target; such a rung promotes only once the rung before it is closed
   * (the search has stopped proposing), so it takes the best, not the first. Default: no cap.
   */
  max: positiveInt().optional(),
  /** This rung's own training, continuing from the weights of the rung before it. Required. */
  finetune: rungLengthSchema,
});

export const evaluationSchema = z.strictObject({
  /** Channel importance criterion (which channels a cut keeps). Default `l1`. */
  importance: z.enum(IMPORTANCE_CRITERIA).default('l1'),
  /**
   * BatchNorm re-calibration on training batches (EagleEye's adaptive BN). Default 10 batches of
   * 128: on the ResNet-20 base, 20 candidates ranked by it agreed with the 50-batch proxy at
   * Kendall τ 0.997 (1.0 and 0.986 within each target), and with fine-tuned accuracy as well as
   * the 50-batch proxy did, at half its cost (bench/proxy-fidelity.ts, docs/benchmarks.md "Proxy fidelity").
   */
  calibration: z
    .strictObject({
      /** Default 10. */
      batches: positiveInt().default(10),
      /** Default 128. */
      batchSize: positiveInt().default(128),
      /**
       * Convs not followed by a BatchNorm (models without BN, PyTorch exports with BN folded in)
       * have nothing to re-calibrate: `auto` gives each of them a BN whose statistics are measured
       * on the unpruned model and whose affine makes the pair compute exactly the conv, so the
       * proxy re-calibrates it after a cut (src/model/ir/unfold.ts); `off` scores such convs as cut.
       * Default `auto`.
       */
      unfold: z.enum(['auto', 'off']).default('auto'),
    })
    .prefault({}),
  /** Proxy accuracy on the validation split. */
  validation: z
    .strictObject({
      /** Evaluate on the first N validation images only. Default: all. */
      limit: positiveInt().optional(),
    })
    .prefault({}),
  /**
   * The one fine-tune recipe: rungs (finalists included) and NetAdapt's `adapt` stage train with it
   * (docs/rungs.md). Optimizer, momentum, weight decay and augmentation default to the base model's
   * `train` recipe, so a fine-tune continues the training the base had.
   */
  finetune: finetuneSchema.prefault({}),
  /**
   * Successive-halving rungs after the proxy rung (ASHA, Li et al. 2020; Optuna's
   * SuccessiveHalvingPruner, Ray Tune's ASHA): each admits the best `keep` fraction of the rung
   * before it, per target, and fine-tunes them longer (docs/rungs.md). The last rung is the finalists.
   * Default: what the `finalists` shorthand resolves to.
   */
  rungs: z.array(rungSchema, { error: 'a list of rungs `{ keep, finetune: { steps } | { epochs } }`' }).optional(),
  /**
   * Shorthand for a single final rung: `{ count: c, epochs: e }` is
   * `rungs: [{ keep: 1, max: ceil(c / number of targets), finetune: { epochs: e } }]` (none when
   * c = 0). Not together with `rungs`. Default `{ count: 3, epochs: 1 }` when `rungs` is absent.
   * `batchSize`, `learningRate`, `batchesPerEpoch` here are read as `evaluation.finetune.<key>`.
   */
  finalists: z
    .strictObject({
      /** How many (0 = no rung). Default 3. */
      count: nonNegativeInt().default(3),
      /** Fine-tuning epochs (0 = score without fine-tuning). Default 1. */
      epochs: nonNegativeInt().default(1),
      /** Read as `evaluation.finetune.batchSize`. Default: none. */
      batchSize: positiveInt().optional(),
      /** Read as `evaluation.finetune.learningRate`. Default: none. */
      learningRate: positiveNumber().optional(),
      /** Read as `evaluation.finetune.batchesPerEpoch`. Default: none. */
      batchesPerEpoch: positiveInt().optional(),
    })
    .optional(),
  /**
   * Stage `adapt` (NetAdapt's short fine-tune, scored on validation), for controllers that ask for
   * it; the adapted weights are kept so child trials can start from them. It trains with
   * `evaluation.finetune`'s recipe for this budget.
   */
  adapt: z
    .strictObject({
      /** Default 1. */
      epochs: positiveInt().default(1),
      /** Batches per epoch. Default 20. */
      batchesPerEpoch: positiveInt().default(20),
    })
    .prefault({}),
  /** Inference latency measurement. */
  latency: z
    .strictObject({
      /** Default 32. */
      batchSize: positiveInt().default(32),
      /** Timed runs after one warm-up (the median is reported). Default 5. */
      runs: positiveInt().default(5),
      /**
       * The engine whose latency `{ latency: f }` targets, `space.channelStep: auto` and the latency
       * table refer to (docs/latency.md): `onnxruntime` (CPU; CUDA when installed, untested) or
       * `tfjs-wasm` (tfjs's wasm backend; the process must run with `--backend wasm`). Default `onnxruntime`.
       */
      engine: z.enum(['onnxruntime', 'tfjs-wasm'], { error: '`onnxruntime` or `tfjs-wasm`' }).default('onnxruntime'),
      /**
       * The latency table is measured at channel counts that are multiples of this (and each group's
       * minimum and full count); counts between are interpolated. `auto`: half the engine's channel
       * block (8 with AVX-512, 4 with AVX2; 8 without a block). Default `auto`.
       */
      tableStep: z.union([positiveInt('an integer >= 1 or `auto`'), z.literal('auto')], { error: 'an integer >= 1 or `auto`' }).default('auto'),
      /**
       * The latency table's clock: `wall` (elapsed time) or `cpu` (the process's CPU time, which a
       * host busy with other work does not inflate; it measures work, summed over threads). The
       * proxy's measured latency stays wall time. Default `wall`.
       */
      clock: z.enum(['wall', 'cpu'], { error: '`wall` or `cpu`' }).default('wall'),
      /**
       * Calibration candidates measured when a study's latency model is prepared: random candidates
       * (a seed of their own, never the held-out ones `check` measures), each timed end to end in
       * alternation with the base; the correction `measured fraction of the base = a x (sum of entries
       * / base's sum) + 1 - a` is fitted on them (docs/latency.md). 0: no correction, the overhead
       * alone is fitted on the base. Default 8.
       */
      calibration: nonNegativeInt().default(8),
      /**
       * Held-out candidates measured end to end when a study's latency model is prepared, against their
       * prediction; the study records the median error and the report shows it. 0: no check. Default 8.
       */
      check: nonNegativeInt().default(8),
      /** Build the table and record each proxy trial's predicted latency even without latency targets. Default false. */
      predict: flag().default(false),
    })
    .prefault({}),
});
