/** Worker-thread entry: one TfjsEvaluator per thread (its own tfjs instance and base model). */
import { parentPort, workerData } from 'node:worker_threads';
import { isAutopruneError } from '../core/errors.js';
import type { BaseSource, EvaluatorOptions } from './options.js';
import type { Splits } from './setup.js';
import { TfjsEvaluator } from './tfjs.js';
import type { EvalRequest } from './types.js';

const { config, name, splits } = workerData as { config: EvaluatorOptions & BaseSource; name: string; splits?: Splits };
const port = parentPort!;

try {
  const evaluator = await TfjsEvaluator.create(config, { worker: name, splits });
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
