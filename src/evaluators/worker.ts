/**
 * Worker-thread entry: one evaluator per thread with its own base model: a GraphEvaluator for an ONNX
 * checkpoint (the thread imports the graph itself from the path), else a TfjsEvaluator (its own tfjs).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isAutopruneError } from '../core/errors.js';
import { isOnnxPath } from '../model/ir/onnx-import.js';
import { GraphEvaluator } from './graph.js';
import type { BaseSource, EvaluatorOptions } from './options.js';
import type { Splits } from './setup.js';
import { TfjsEvaluator } from './tfjs.js';
import type { EvalRequest } from './types.js';

const { config, name, splits } = workerData as { config: EvaluatorOptions & BaseSource; name: string; splits?: Splits };
const port = parentPort!;

try {
  const checkpoint = config.model.checkpoint;
  const evaluator =
    checkpoint !== undefined && isOnnxPath(checkpoint)
      ? await GraphEvaluator.create(config, { worker: name, splits })
      : await TfjsEvaluator.create(config, { worker: name, splits });
  port.on('message', async (m: { id: number; req: EvalRequest }) => {
    try {
      port.postMessage({ id: m.id, result: await evaluator.evaluate(m.req) });
    } catch (e) {
      port.postMessage({ id: m.id, error: { message: (e as Error).message, code: isAutopruneError(e) ? e.code : undefined } });
    }
  });
  port.postMessage({ ready: true });
} catch (e) {
  port.postMessage({ fatal: { message: (e as Error).message, code: isAutopruneError(e) ? e.code : undefined } });
}
