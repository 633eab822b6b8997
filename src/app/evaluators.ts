/**
 * The evaluators of a host: the engine's evaluator (src/evaluators/engine.ts) wrapped as a study's
 * workers run it (`search`, `autoprune worker` and the crash tortures alike):
 *  - Artifacts through the store. Evaluators read a parent's weights from, and save adapted or
 *    fine-tuned models into, plain folders under `store.artifactDir(study)`. Before an evaluation
 *    the parent's folder is fetched from the store into this host's copy; after it, the saved
 *    folder is put into the store, before the trial is completed and its children can be claimed.
 *    So the artifacts live where every worker of the store reads them (the database for
 *    PostgreSQL). Paths outside the study's artifact folder are left alone.
 *  - Latencies stamped with the host and device that measured them, so that latencies of different
 *    machines are never compared (`pick --max-latency`).
 */
import { cpus, hostname } from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { executionProviders } from '../engine/onnxruntime.js';
import { createEvaluator } from '../evaluators/engine.js';
import type { Splits } from '../evaluators/setup.js';
import { type EvalResult, type Evaluator, latencyEngineOf } from '../evaluators/types.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { artifactKeyOf, pullFolder, pushFolder } from '../store/artifacts.js';
import type { Store } from '../store/index.js';

/** `cpu:<model name>` of this machine (the first core's; a host has one CPU model in practice). */
export function cpuDevice(): string {
  return `cpu:${(cpus()[0]?.model ?? 'unknown').trim().replace(/\s+/g, ' ')}`;
}

/**
 * The device a latency was measured on when the evaluator did not say: onnxruntime runs on
 * CUDA device 0 when its CUDA provider is installed (src/engine/onnxruntime.ts), else on the CPU;
 * tfjs here runs on the CPU.
 */
export function defaultDevice(r: Pick<EvalResult, 'timings'>, providers: () => readonly string[] = executionProviders): string {
  return latencyEngineOf(r.timings) === 'onnxruntime' && providers()[0] === 'cuda' ? 'cuda:0' : cpuDevice();
}

export function studyEvaluator(evaluator: Evaluator, store: Store, study: string, host: string = hostname()): Evaluator {
  return {
    capacity: evaluator.capacity,
    async evaluate(req) {
      const parentKey = req.parent && artifactKeyOf(store, study, req.parent.modelDir);
      if (req.parent && parentKey) await pullFolder(store, study, parentKey, req.parent.modelDir);
      const r = await evaluator.evaluate(req);
      const savedKey = req.saveTo === undefined ? null : artifactKeyOf(store, study, req.saveTo);
      if (req.saveTo !== undefined && savedKey !== null) await pushFolder(store, study, savedKey, req.saveTo);
      return { ...r, latencyHost: r.latencyHost ?? host, latencyDevice: r.latencyDevice ?? defaultDevice(r) };
    },
    close: () => evaluator.close(),
  };
}

/**
 * The evaluator a host runs for `study`: the config's engine (onnxruntime or tfjs, threads or
 * inline) with artifacts through the store and latencies stamped with this host and device.
 */
export async function hostEvaluator(
  cfg: ResolvedConfig,
  inputs: { splits: Splits; base: tf.LayersModel | null; graph?: ModelGraph | null },
  store: Store,
  study: string,
): Promise<Evaluator> {
  return studyEvaluator(await createEvaluator(cfg, inputs), store, study);
}
