/**
 * Knowledge distillation on libtorch (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a
 * Neural Network"). The student fine-tunes on
 *
 *   (1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher / T) ‖ softmax(student / T))
 *
 * with the KL summed over classes and averaged over the batch (PyTorch's `reduction='batchmean'`).
 * The soft term's gradient scales as 1/T²; the T² factor keeps its size comparable to the hard
 * term's whatever T is (the paper's remark). The teacher is the unpruned base model in inference
 * mode (BN on its moving statistics, dropout off) with its weights frozen, so its forward records
 * no autograd graph; it runs each step on the same input tensor as the student (the augmented
 * batch). The recipe reshuffles every epoch (recipe.ts), so no batch repeats and teacher logits are
 * never cached. Built from the binding's existing ops (log_softmax, softmax, mul, sub, sum, scale).
 */
import { AutopruneError, ErrorCodes, isAutopruneError } from '../core/errors.js';
import { type TorchBinding, type TorchTensor, torchStatus } from '../engine/torch.js';
import { graphFromLayersModel } from '../model/ir/from-tfjs.js';
import type { DistillOptions } from './recipe.js';
import { type TensorScope, TorchGraphModel } from './torch-graph.js';
import { TorchModel } from './torch-model.js';

/** The loss's weights: softmax temperature T > 0 and alpha in [0, 1]. */
export type DistillWeights = Pick<DistillOptions, 'temperature' | 'alpha'>;

/**
 * The distillation loss of a batch (a scalar owned by `s`): student and teacher logits [N, K],
 * integer labels [N]. alpha = 0 is the cross entropy alone; alpha = 1 the soft term alone.
 */
export function distillationLoss(s: TensorScope, student: TorchTensor, teacher: TorchTensor, labels: TorchTensor, w: DistillWeights): TorchTensor {
  const t = w.temperature;
  const n = student.shape[0];
  const ce = s.op('cross_entropy', [student, labels]);
  const logQ = s.op('log_softmax', [s.op('scale', [student], { mul: 1 / t })], { dim: 1 });
  const soft = s.op('scale', [teacher], { mul: 1 / t });
  const p = s.op('softmax', [soft], { dim: 1 });
  const logP = s.op('log_softmax', [soft], { dim: 1 });
  // sum_i sum_k p_ik (log p_ik − log q_ik); the batch mean and T² are folded into the weight below.
  const kl = s.op('sum', [s.op('mul', [p, s.op('sub', [logP, logQ])])]);
  return s.op('add', [s.op('scale', [ce], { mul: 1 - w.alpha }), s.op('scale', [kl], { mul: (w.alpha * t * t) / n })]);
}

/** The teacher on libtorch: logits of an NCHW input in inference mode, weights frozen. */
export interface TorchTeacher {
  logits(s: TensorScope, x: TorchTensor): TorchTensor;
  dispose(): void;
}

/**
 * The teacher of `source` on libtorch. A tfjs model trains and runs as its graph when the graph
 * importer takes it, else layer by layer (TorchModel), as the student does (fit.ts).
 */
export function torchTeacher(torch: TorchBinding, source: DistillOptions['teacher']): TorchTeacher {
  const model = 'graph' in source ? TorchGraphModel.fromGraph(torch, source.graph) : fromLayersModel(torch, source.model);
  const { decayed, other } = model.parameterGroups();
  for (const p of [...decayed, ...other]) p.requiresGrad(false);
  return {
    logits: (s, x) => model.forward(s, x, false),
    dispose: () => model.dispose(),
  };
}

function fromLayersModel(torch: TorchBinding, model: Parameters<typeof graphFromLayersModel>[0]): TorchGraphModel | TorchModel {
  try {
    return TorchGraphModel.fromGraph(torch, graphFromLayersModel(model));
  } catch (e) {
    if (isAutopruneError(e) && (e.code === ErrorCodes.MODEL_UNSUPPORTED_LAYER || e.code === ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY))
      return TorchModel.fromLayersModel(torch, model);
    throw e;
  }
}

/**
 * The error for distillation asked of the tfjs trainer (explicitly, or under `auto` without the
 * libtorch binding): it never trains without the teacher silently.
 */
export function distillNeedsTorch(): AutopruneError {
  const t = torchStatus();
  return new AutopruneError(
    ErrorCodes.BACKEND_UNAVAILABLE,
    `\`evaluation.finetune.distill\` trains on libtorch, not tfjs${t.loaded ? ': set `run.engine.train` to auto or libtorch' : `; libtorch is ${t.reason}`}`,
  );
}
