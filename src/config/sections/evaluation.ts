/** The `evaluation` section: how a candidate is scored at each stage. */
import { z } from 'zod';
import { flag, nonNegativeInt, positiveInt, positiveNumber } from './leaves.js';

export const IMPORTANCE_CRITERIA = ['l1', 'l2', 'bn-gamma', 'random'] as const;

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
      /**
       * The engine whose latency `{ latency: f }` targets, `space.channelStep: auto` and the latency
       * table refer to (docs/latency.md). Only `onnxruntime` (CPU; CUDA when installed, untested)
       * has a table. Default `onnxruntime`.
       */
      engine: z.enum(['onnxruntime'], { error: '`onnxruntime`' }).default('onnxruntime'),
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
      /** Build the table and record each proxy trial's predicted latency even without latency targets. Default false. */
      predict: flag().default(false),
    })
    .prefault({}),
});
