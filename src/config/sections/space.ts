/** The `space` section: which keep ratios a candidate may take. */
import { z } from 'zod';
import { positiveInt, ratio } from './leaves.js';

export const spaceSchema = z.strictObject({
  /** Smallest keep ratio per group, in (0, 1]. Default 0.25. */
  minKeepRatio: ratio().default(0.25),
  /**
   * Kept channels are rounded to a multiple of this (hardware likes 8), or `auto`: the step at which
   * `evaluation.latency.engine`'s latency steps on this host, from the latency table
   * (docs/latency.md). Default 1.
   */
  channelStep: z.union([positiveInt('an integer >= 1 or `auto`'), z.literal('auto')], { error: 'an integer >= 1 or `auto`' }).default(1),
  /** Group ids never pruned. Default []. */
  skip: z.array(z.string({ error: 'a group id' }), { error: 'a list of group ids' }).default([]),
});
