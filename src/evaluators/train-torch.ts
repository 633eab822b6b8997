/**
 * Training on libtorch, following the shared recipe (recipe.ts) step for step like the tfjs
 * trainer: same batches, augmentation, schedule and coupled weight decay; libtorch's autograd and
 * torch::optim do the arithmetic. The trained weights are written back into the tfjs model.
 */
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { batches } from '../data/batch.js';
import type { Split } from '../data/types.js';
import type { TorchBinding, TorchOptimizer, TorchTensor } from '../engine/torch.js';
import { runEpochs, type TrainOptions, type TrainResult, validateTrainOptions } from './recipe.js';
import { TensorScope } from './torch-graph.js';
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

/** One optimizer step on a batch; returns the batch's mean loss. */
export function torchStep(model: TorchTrainable, optimizer: TorchOptimizer, batch: Split, lr: number): number {
  const s = new TensorScope(model.torch);
  try {
    const loss = torchLoss(s, model, batch, true);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step(lr);
    return loss.item();
  } finally {
    s.dispose();
  }
}

/** Mean cross entropy of a batch (owned by `s`). */
export function torchLoss(s: TensorScope, model: TorchTrainable, batch: Split, training: boolean): ReturnType<TensorScope['op']> {
  const [h, w, c] = batch.shape;
  const n = batch.count;
  const x = model.input(s, batch.images.subarray(0, n * h * w * c), [n, h, w, c]);
  const y = s.keep(model.torch.fromData(Int32Array.from(batch.labels.subarray(0, n)), [n]));
  return s.op('cross_entropy', [model.forward(s, x, training), y]);
}

export async function trainTorch(torch: TorchBinding, model: tf.LayersModel, data: Split, o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o);
  const tm = TorchModel.fromLayersModel(torch, model);
  try {
    const optimizer = makeTorchOptimizer(torch, tm, o);
    if (o.resumeFrom) optimizer.load(join(o.resumeFrom, 'optimizer.pt'));
    const r = await runEpochs(
      data,
      o,
      (batch, lr) => torchStep(tm, optimizer, batch, lr),
      async (epoch) => {
        if (!o.onEpochEnd) return;
        tm.writeBack();
        await o.onEpochEnd(epoch, async (dir) => optimizer.save(join(dir, 'optimizer.pt')));
      },
    );
    tm.writeBack();
    return { ...r, engine: 'libtorch' };
  } finally {
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
