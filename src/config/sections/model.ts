/** The `model` section: the base model to prune. */
import { z } from 'zod';
import { pathString, positiveNumber } from './leaves.js';

export const ZOO_MODELS = ['plain-cnn', 'resnet-20', 'mobilenet-v2-tiny'] as const;

export const modelSchema = z
  .strictObject({
    /** Architecture from the built-in zoo (required by `autoprune train`; describes a checkpoint's origin). No default. */
    zoo: z.enum(ZOO_MODELS).optional(),
    /** Width multiplier of the zoo architecture, > 0. Default 1. */
    width: positiveNumber().default(1),
    /**
     * The trained base model (required by `autoprune search`): a tfjs model.json, or an ONNX model
     * (a path ending in `.onnx`, e.g. from torch.onnx.export; see docs/pytorch.md). No default.
     */
    checkpoint: pathString().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.zoo === undefined && m.checkpoint === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `\`zoo\` (one of ${ZOO_MODELS.join(', ')}) and/or \`checkpoint\` (a tfjs model.json or a .onnx model)`,
      });
    }
  });
