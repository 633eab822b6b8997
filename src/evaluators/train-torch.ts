/**
 * Training on libtorch, following the shared recipe (recipe.ts) step for step like the tfjs
 * trainer: same batches, augmentation, schedule and coupled weight decay; libtorch's autograd and
 * torch::optim do the arithmetic. A ModelGraph trains into a new graph (`trainTorchGraph`); a tfjs
 * LayersModel (`trainTorch`) has its trained weights written back into it.
 */
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { batches } from '../data/batch.js';
import type { Split } from '../data/types.js';
import type { TorchBinding, TorchOptimizer, TorchTensor } from '../engine/torch.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { type DistillWeights, distillationLoss, type TorchTeacher, torchTeacher } from './distill.js';
import { runEpochs, type TrainOptions, type TrainResult, validateTrainOptions } from './recipe.js';
import { TensorScope, TorchGraphModel, type TorchGraphOptions } from './torch-graph.js';
import { TorchModel } from './torch-model.js';
import { ADAM_EPSILON } from './train.js';

/** What the trainer needs of a model on libtorch (TorchGraphModel, or TorchModel for a tfjs LayersModel). */
export interface TorchTrainable {
  readonly torch: TorchBinding;
  parameterGroups(): { decayed: TorchTensor[]; other: TorchTensor[] };
  /** NHWC images [N, H, W, C] -> the NCHW input tensor, owned by `scope`. */
  input(scope: TensorScope, images: Float32Array | Float64Array, shape: readonly number[]): TorchTensor;
  forward(scope: TensorScope, x: TorchTensor, training: boolean): TorchTensor;
}

export function makeTorchOptimizer(torch: TorchBinding, model: TorchTrainable, o: TrainOptions): TorchOptimizer {
  const { decayed, other } = model.parameterGroups();
  const groups = [
    { params: decayed, weightDecay: o.weightDecay ?? 0 },
    { params: other, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
  return new torch.Optimizer(o.optimizer, groups, { lr: o.learningRate, momentum: o.momentum, epsilon: ADAM_EPSILON });
}

/** A teacher on libtorch with the distillation loss's weights (distill.ts). */
export interface TorchDistill extends DistillWeights {
  readonly teacher: TorchTeacher;
}

/** One optimizer step on a batch; returns the batch's mean loss (the distillation loss when `distill` is given). */
export function torchStep(model: TorchTrainable, optimizer: TorchOptimizer, batch: Split, lr: number, distill?: TorchDistill): number {
  const s = new TensorScope(model.torch);
  try {
    const loss = torchLoss(s, model, batch, true, distill);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step(lr);
    return loss.item();
  } finally {
    s.dispose();
  }
}

/**
 * Mean cross entropy of a batch (owned by `s`), or with `distill` the distillation loss, the
 * teacher run on the same input tensor as the student.
 */
export function torchLoss(s: TensorScope, model: TorchTrainable, batch: Split, training: boolean, distill?: TorchDistill): TorchTensor {
  const [h, w, c] = batch.shape;
  const n = batch.count;
  const x = model.input(s, batch.images.subarray(0, n * h * w * c), [n, h, w, c]);
  const y = s.keep(model.torch.fromData(Int32Array.from(batch.labels.subarray(0, n)), [n]));
  const logits = model.forward(s, x, training);
  if (!distill) return s.op('cross_entropy', [logits, y]);
  return distillationLoss(s, logits, distill.teacher.logits(s, x), y, distill);
}

/** The recipe's distillation with its teacher built on libtorch, or undefined; dispose the teacher after training. */
function distillOf(torch: TorchBinding, o: TrainOptions): TorchDistill | undefined {
  if (!o.distill) return undefined;
  const { temperature, alpha, teacher } = o.distill;
  return { temperature, alpha, teacher: torchTeacher(torch, teacher) };
}

export async function trainTorch(torch: TorchBinding, model: tf.LayersModel, data: Split, o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o);
  const tm = TorchModel.fromLayersModel(torch, model);
  let distill: TorchDistill | undefined;
  try {
    distill = distillOf(torch, o);
    const optimizer = makeTorchOptimizer(torch, tm, o);
    if (o.resumeFrom) optimizer.load(join(o.resumeFrom, 'optimizer.pt'));
    const r = await runEpochs(
      data,
      o,
      (batch, lr) => torchStep(tm, optimizer, batch, lr, distill),
      async (epoch) => {
        if (!o.onEpochEnd) return;
        tm.writeBack();
        await o.onEpochEnd(epoch, async (dir) => optimizer.save(join(dir, 'optimizer.pt')));
      },
    );
    tm.writeBack();
    return { ...r, engine: 'libtorch' };
  } finally {
    distill?.teacher.dispose();
    tm.dispose();
  }
}

/** Top-1 accuracy on libtorch (inference mode: BN uses its moving statistics). */
export function accuracyTorch(torch: TorchBinding, model: tf.LayersModel, split: Split, options: { batchSize?: number; limit?: number } = {}): number {
  const tm = TorchModel.fromLayersModel(torch, model);
  torch.setGradEnabled(false);
  let correct = 0;
  let total = 0;
  try {
    for (const batch of batches(split, options.batchSize ?? 256, { maxExamples: options.limit })) {
      const s = new TensorScope(torch);
      try {
        const [h, w, c] = batch.shape;
        const x = tm.input(s, batch.images, [batch.count, h, w, c]);
        const pred = s.op('argmax', [tm.forward(s, x, false)], { dim: 1 }).data();
        for (let i = 0; i < batch.count; i++) if (pred[i] === batch.labels[i]) correct++;
        total += batch.count;
      } finally {
        s.dispose();
      }
    }
  } finally {
    torch.setGradEnabled(true);
    tm.dispose();
  }
  return total === 0 ? NaN : correct / total;
}

export interface GraphTrainOptions {
  /** BN momentum (Keras' convention), one or by BN node; see TorchGraphOptions. */
  readonly bnMomentum?: TorchGraphOptions['bnMomentum'];
  /** After each epoch, with the graph as trained so far; `saveOptimizer(dir)` as in TrainOptions. */
  readonly onEpochEnd?: (epoch: number, graph: ModelGraph, saveOptimizer: (dir: string) => Promise<void>) => Promise<void>;
}

/**
 * Trains a graph on libtorch following the recipe; returns a new graph with the trained weights and
 * BN moving statistics (the input graph is not changed). `o.onEpochEnd` (the tfjs model's hook) is
 * not called: pass `g.onEpochEnd` for checkpoints.
 */
export async function trainTorchGraph(
  torch: TorchBinding,
  graph: ModelGraph,
  data: Split,
  o: TrainOptions,
  g: GraphTrainOptions = {},
): Promise<{ result: TrainResult; graph: ModelGraph }> {
  validateTrainOptions(o);
  const tm = TorchGraphModel.fromGraph(torch, graph, { bnMomentum: g.bnMomentum });
  let distill: TorchDistill | undefined;
  try {
    distill = distillOf(torch, o);
    const optimizer = makeTorchOptimizer(torch, tm, o);
    if (o.resumeFrom) optimizer.load(join(o.resumeFrom, 'optimizer.pt'));
    const r = await runEpochs(
      data,
      o,
      (batch, lr) => torchStep(tm, optimizer, batch, lr, distill),
      async (epoch) => g.onEpochEnd?.(epoch, tm.writeBack(), async (dir) => optimizer.save(join(dir, 'optimizer.pt'))),
    );
    return { result: { ...r, engine: 'libtorch' }, graph: tm.writeBack() };
  } finally {
    distill?.teacher.dispose();
    tm.dispose();
  }
}

/** Runs `f` with autograd off (inference), restoring it after. */
function noGrad<T>(torch: TorchBinding, f: () => T): T {
  torch.setGradEnabled(false);
  try {
    return f();
  } finally {
    torch.setGradEnabled(true);
  }
}

/** Top-1 accuracy of a graph on libtorch (inference mode: BN uses its moving statistics). */
export function accuracyTorchGraph(torch: TorchBinding, graph: ModelGraph, split: Split, options: { batchSize?: number; limit?: number } = {}): number {
  const tm = TorchGraphModel.fromGraph(torch, graph);
  let correct = 0;
  let total = 0;
  try {
    noGrad(torch, () => {
      for (const batch of batches(split, options.batchSize ?? 256, { maxExamples: options.limit })) {
        const s = new TensorScope(torch);
        try {
          const [h, w, c] = batch.shape;
          const x = tm.input(s, batch.images.subarray(0, batch.count * h * w * c), [batch.count, h, w, c]);
          const pred = s.op('argmax', [tm.forward(s, x, false)], { dim: 1 }).data();
          for (let i = 0; i < batch.count; i++) if (pred[i] === batch.labels[i]) correct++;
          total += batch.count;
        } finally {
          s.dispose();
        }
      }
    });
  } finally {
    tm.dispose();
  }
  return total === 0 ? NaN : correct / total;
}

/**
 * Adaptive BN (EagleEye, Li et al. 2020) on libtorch: the BN moving statistics of a pruned graph
 * recomputed as the plain average of `batches` training batches' statistics (momentum k / (k + 1)
 * for batch k, PyTorch's `momentum=None`), as train.ts does on tfjs; weights are not trained.
 * Returns the re-calibrated graph and the batches used.
 */
export function recalibrateBatchNormTorch(
  torch: TorchBinding,
  graph: ModelGraph,
  data: Split,
  o: { batches: number; batchSize: number; seed: number },
): { graph: ModelGraph; batches: number } {
  if (o.batches <= 0 || !graph.nodes.some((n) => n.op === 'BatchNormalization')) return { graph, batches: 0 };
  const tm = TorchGraphModel.fromGraph(torch, graph);
  let k = 0;
  try {
    noGrad(torch, () => {
      for (const batch of batches(data, o.batchSize, { shuffle: new Rng(o.seed), maxBatches: o.batches })) {
        tm.setBnMomentum(k / (k + 1));
        const s = new TensorScope(torch);
        try {
          const [h, w, c] = batch.shape;
          tm.forward(s, tm.input(s, batch.images.subarray(0, batch.count * h * w * c), [batch.count, h, w, c]), true);
        } finally {
          s.dispose();
        }
        k++;
      }
    });
    return { graph: tm.writeBack(), batches: k };
  } finally {
    tm.dispose();
  }
}
