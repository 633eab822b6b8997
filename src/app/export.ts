/**
 * `autoprune export`: one trial's pruned model as a standard tfjs LayersModel folder (model.json +
 * weights.bin) and/or model.onnx, plus plan.json and a model card. A base model imported from ONNX
 * leaves as ONNX in the layout, input name and dynamic batch axis it came in (tfjs too when every
 * node has a tfjs layer), with apply_plan.py. A finalist with a saved fine-tuned model is exported as that model;
 * any other complete trial is rebuilt exactly as its proxy evaluation built it (same channels, same
 * BN re-calibration, see evaluators/plan-rng.ts), so the exported model is the one that was scored.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import { mmacs, pct } from '../core/format.js';
import type { Cost } from '../core/types.js';
import { type Preprocessing, preprocessingOf } from '../data/preprocessing.js';
import { type BackendName, initBackend } from '../engine/backend.js';
import { proxyBase } from '../evaluators/onnx.js';
import { onnxProxy } from '../evaluators/onnx-proxy.js';
import { prunedForTrial, pruningRng } from '../evaluators/plan-rng.js';
import { loadBaseGraph, loadBaseModel, loadSplits } from '../evaluators/setup.js';
import { analyzeModel } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import { loadModel, saveModel } from '../model/io.js';
import { analyzeGraph } from '../model/ir/analyze.js';
import { graphCost } from '../model/ir/cost.js';
import { applyGraphPlan, makeGraphPlan } from '../model/ir/cut.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { hasGraph, loadGraph } from '../model/ir/io.js';
import { isOnnxPath } from '../model/ir/onnx-import.js';
import { buildPlan, writePlan } from '../model/ir/plan.js';
import { graphToOnnx } from '../model/ir/to-onnx.js';
import { graphToTfjs } from '../model/ir/to-tfjs.js';
import { exportOnnxGraph } from '../model/onnx.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import { escapeMarkdownCell } from '../report/markdown.js';
import { artifactKeyOf, pullFolder } from '../store/artifacts.js';
import type { FinalRecord, Store, StudyRecord, TrialRecord } from '../store/types.js';
import { type StudyFinal, studyFinals } from '../study/finals.js';
import { artifactPaths } from '../study/lineage.js';
import { requireStudy, studyConfig, withStore } from './studies.js';

export const EXPORT_FORMATS = ['onnx', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  /** The store: SQLite file or postgres:// URL. */
  readonly store: string;
  readonly study: string;
  readonly trial: number;
  /** Output folder; default exports/<study>/trial-<N>. */
  readonly out?: string;
  /** Formats to write; default both. Naming `tfjs` makes a graph without a tfjs twin an error (else a note). */
  readonly format?: readonly ExportFormat[];
  /** The tfjs backend; default the study's `run.backend`. */
  readonly backend?: BackendName;
  /** Told what is not written and why (a graph without a tfjs twin), when it happens. */
  readonly onNote?: (line: string) => void;
}

export interface ExportOutcome {
  readonly out: string;
  readonly card: ModelCard;
}

function finetuneText(c: ModelCard): string {
  const e = c.finetuneEpochs;
  const epochs = e === null ? '? epochs' : `${e} epoch${e === 1 ? '' : 's'}`;
  return c.finetuneBatchesPerEpoch === null ? `fine-tuned ${epochs}` : `fine-tuned ${epochs} of ${c.finetuneBatchesPerEpoch} batches`;
}

/** What card.json holds. Accuracies are fractions; `flopsFraction` = MACs / base MACs. */
export interface ModelCard {
  readonly study: string;
  readonly trial: number;
  readonly controller: string;
  /** `fine-tuned`: the finalist's saved fine-tuned model; `proxy`: pruned + BN re-calibrated, not trained. */
  readonly weights: 'fine-tuned' | 'proxy';
  readonly importance: string;
  readonly groups: readonly { readonly id: string; readonly baseChannels: number; readonly keptChannels: number; readonly ratio: number }[];
  readonly macs: number;
  readonly params: number;
  readonly flopsFraction: number;
  /** Base MACs / pruned MACs (a FLOPs ratio, not a measured latency ratio). */
  readonly speedup: number;
  readonly paramsFraction: number;
  /** Validation accuracy after pruning + BN re-calibration (the search's objective). */
  readonly proxyAccuracy: number | null;
  /** Test accuracy after fine-tuning (finalists only). */
  readonly finalAccuracy: number | null;
  /** The rung `finalAccuracy` comes from: the study's last (docs/rungs.md, docs/fidelity.md); null without one. */
  readonly finalRung: number | null;
  readonly finetuneEpochs: number | null;
  /** Fine-tuning stopped each epoch after this many batches (evaluation.finetune.batchesPerEpoch); null = whole epochs. */
  readonly finetuneBatchesPerEpoch: number | null;
  readonly latencyMs: number | null;
  readonly base: {
    readonly checkpoint: string | null;
    readonly macs: number;
    readonly params: number;
    readonly proxyAccuracy: number | null;
    readonly testAccuracy: number | null;
  };
  readonly configHash: string;
  /** What the model's input pixels are: size, channels, the layout model.onnx takes (model.json is always NHWC), resizing and normalisation. */
  readonly preprocessing: Preprocessing;
  /** model.onnx's input: its name and layout (the base model's: NHWC for tfjs, as it came for ONNX), batch axis dynamic. */
  readonly onnxInput: { readonly name: string; readonly layout: 'NHWC' | 'NCHW' };
  /**
   * Files written: `model.json` (+ weights.bin, tfjs LayersModel) and/or `model.onnx` (NHWC input `input`,
   * logits `output`), and `plan.json` (the cut as kept indices; + apply_plan.py for an ONNX base model).
   */
  readonly files: readonly string[];
  /** Re-creates this folder. */
  readonly command: string;
  readonly createdAt: string;
}

function latestFinal(finals: readonly StudyFinal[], trial: number): StudyFinal | null {
  const mine = finals.filter((f) => f.trial === trial).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  return mine.at(-1) ?? null;
}

const modelJsonOf = (path: string): string => (path.endsWith('.json') ? path : join(path, 'model.json'));

/** The base checkpoint must still be the model the study searched (same groups, same cost). */
function checkBase(study: StudyRecord, cfg: ResolvedConfig, base: tf.LayersModel): ReturnType<typeof analyzeModel> {
  const a = analyzeModel(base);
  const got = a.groups.map((g) => `${g.id}:${g.channels}`).join(',');
  const want = study.space.groups.map((g) => `${g.id}:${g.channels}`).join(',');
  const cost = costOf(a, null);
  if (got !== want || cost.macs !== study.baseCost.macs || cost.params !== study.baseCost.params) {
    throw new AutopruneError(
      ErrorCodes.MODEL_NOT_FOUND,
      `Base model ${quote(cfg.model.checkpoint)} no longer matches study ${quote(study.name)} (${mmacs(cost.macs)} MMACs, ${cost.params} params, ${a.groups.length} groups; expected ${mmacs(study.baseCost.macs)} MMACs, ${study.baseCost.params} params, ${study.space.groups.length} groups): restore the checkpoint the search used`,
    );
  }
  return a;
}

/** A mismatch between the stored cost and the built model is a bug in pruning or cost counting. */
function checkCost(study: string, trial: TrialRecord, got: Cost): void {
  if (got.params !== trial.cost.params || got.macs !== trial.cost.macs) {
    throw new Error(
      `Bug: the exported model of trial ${trial.number} of study ${quote(study)} has ${got.params} params and ${got.macs} MACs, but the trial's recorded cost is ${trial.cost.params} params and ${trial.cost.macs} MACs`,
    );
  }
}

/** Fetches a model folder under the study's artifact folder from the store into this host's copy (other paths are left alone). */
async function pullModel(store: Store, study: string, dir: string): Promise<void> {
  const key = artifactKeyOf(store, study, dir);
  if (key !== null) await pullFolder(store, study, key, dir);
}

async function buildModel(
  study: StudyRecord,
  cfg: ResolvedConfig,
  trial: TrialRecord,
  fin: FinalRecord | null,
  parentDir: string | null,
): Promise<{ model: tf.LayersModel; weights: ModelCard['weights'] }> {
  if (fin?.modelPath) return { model: await loadModel(modelJsonOf(fin.modelPath)), weights: 'fine-tuned' };
  if (parentDir) {
    // A NetAdapt child: cut from its parent's adapted weights, as the evaluator did.
    const parent = await loadModel(modelJsonOf(parentDir));
    try {
      const splits = await loadSplits(cfg);
      const { model } = await prunedForTrial(cfg, parent, analyzeModel(parent), trial.candidate, trial.number, splits.train);
      return { model, weights: 'proxy' };
    } finally {
      parent.dispose();
    }
  }
  const base = await loadBaseModel(cfg);
  try {
    const analysis = checkBase(study, cfg, base);
    const splits = await loadSplits(cfg);
    const { model } = await prunedForTrial(cfg, base, analysis, trial.candidate, trial.number, splits.train);
    return { model, weights: 'proxy' };
  } finally {
    base.dispose();
  }
}

/**
 * A trial of a study whose base model is a graph (an ONNX model): the finalist's saved graph folder,
 * or the base graph cut as the proxy cut it (same plan; convs without a BN unfolded into conv + BN,
 * src/model/ir/unfold.ts) with the BN statistics the proxy's adaptive BN measured on onnxruntime
 * written into its BNs: the model the search scored.
 */
async function buildGraph(
  study: StudyRecord,
  cfg: ResolvedConfig,
  trial: TrialRecord,
  fin: FinalRecord | null,
  parentDir: string | null,
): Promise<{ graph: ModelGraph; weights: ModelCard['weights']; cost: Cost }> {
  if (fin?.modelPath && hasGraph(fin.modelPath)) {
    const graph = await loadGraph(fin.modelPath);
    return { graph, weights: 'fine-tuned', cost: graphCost(analyzeGraph(graph), null) };
  }
  const splits = await loadSplits(cfg);
  // A NetAdapt child is cut from its parent's adapted graph, as the evaluator did.
  const base = parentDir ? await loadGraph(parentDir) : await loadBaseGraph(cfg, splits);
  const cal = cfg.evaluation.calibration;
  const calibration = { batches: cal.batches, batchSize: cal.batchSize, seed: cfg.run.seed, layout: base.inputLayout };
  const pb = await proxyBase(base, { unfold: cal.unfold, train: splits.train, calibration });
  const cost = graphCost(pb.analysis, null);
  if (
    !parentDir &&
    (pb.analysis.groups.map((g) => `${g.id}:${g.channels}`).join(',') !== study.space.groups.map((g) => `${g.id}:${g.channels}`).join(',') ||
      cost.macs !== study.baseCost.macs)
  ) {
    throw new AutopruneError(
      ErrorCodes.MODEL_NOT_FOUND,
      `Base model ${quote(cfg.model.checkpoint)} no longer matches study ${quote(study.name)} (${mmacs(cost.macs)} MMACs, ${pb.analysis.groups.length} groups; expected ${mmacs(study.baseCost.macs)} MMACs, ${study.space.groups.length} groups): restore the checkpoint the search used`,
    );
  }
  const plan = makeGraphPlan(pb.analysis, trial.candidate, cfg.evaluation.importance, pruningRng(cfg, trial.number));
  const cut = applyGraphPlan(pb.cutFrom.graph, pb.cutFrom, plan);
  const r = await onnxProxy(graphToOnnx(cut), splits, { calibration, validationLimit: 1, latency: { batchSize: 1, runs: 0 }, layout: cut.inputLayout });
  const nodes = cut.nodes.map((n) => {
    const st = n.op === 'BatchNormalization' ? r.statistics.get(n.name) : undefined;
    return st ? { ...n, mean: st.mean, variance: st.variance } : n;
  });
  return { graph: { ...cut, nodes }, weights: 'proxy', cost: graphCost(pb.analysis, trial.candidate) };
}

/** The model's tfjs twin, or null (with the reason) when a node has no tfjs layer. */
function tfjsTwin(graph: ModelGraph): { model: tf.LayersModel } | { refused: string } {
  try {
    return { model: graphToTfjs(graph) };
  } catch (e) {
    if (isAutopruneError(e)) return { refused: e.message };
    throw e;
  }
}

/**
 * plan.json: the trial's channels (the same plan the proxy stage cut, same criterion and seed) as
 * kept indices per source node, plus apply_plan.py when the base model came from ONNX (PyTorch).
 */
async function writeTrialPlan(out: string, study: StudyRecord, cfg: ResolvedConfig, trial: TrialRecord): Promise<string[]> {
  const a = analyzeGraph(await loadBaseGraph(cfg));
  if (a.groups.map((g) => `${g.id}:${g.channels}`).join(',') !== study.space.groups.map((g) => `${g.id}:${g.channels}`).join(',')) {
    throw new Error(`Bug: the graph of ${quote(cfg.model.checkpoint)} has other groups than study ${quote(study.name)}`);
  }
  const plan = makeGraphPlan(a, trial.candidate, cfg.evaluation.importance, pruningRng(cfg, trial.number));
  const files = await writePlan(
    out,
    buildPlan(
      a,
      plan.groups.map((g) => g.keep),
    ),
  );
  return files;
}

/** A tfjs model's formats (model.json + weights.bin, model.onnx NHWC); disposes the model. */
async function writeTfjsFormats(model: tf.LayersModel, out: string, formats: ReadonlySet<ExportFormat>, study: string, trial: TrialRecord): Promise<string[]> {
  const files: string[] = [];
  try {
    checkCost(study, trial, { macs: costOf(analyzeModel(model), null).macs, params: model.countParams() });
    if (formats.has('tfjs')) {
      await saveModel(model, out);
      files.push('model.json', 'weights.bin');
    }
    if (formats.has('onnx')) {
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'model.onnx'), encodeOnnx(exportOnnxGraph(model)));
      files.push('model.onnx');
    }
  } finally {
    model.dispose();
  }
  return files;
}

function reproduce(args: ExportOptions, out: string): string {
  const q = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [
    `autoprune export ${q(args.study)} --trial ${args.trial} --out ${q(out)} --store ${q(args.store)}`,
    ...(args.format ? [`--format ${args.format.join(' ')}`] : []),
    ...(args.backend ? [`--backend ${args.backend}`] : []),
  ].join(' ');
}

function cardMarkdown(c: ModelCard): string {
  const e = escapeMarkdownCell;
  const row = (k: string, v: string): string => `| ${k} | ${e(v)} |`;
  return [
    `# ${e(c.study)} · trial ${c.trial}`,
    '',
    c.weights === 'fine-tuned'
      ? 'Weights: the fine-tuned finalist model.'
      : 'Weights: the pruned base model after BN re-calibration (not fine-tuned): the model the search scored.',
    '',
    '| | |',
    '|---|---|',
    row('MACs', `${mmacs(c.macs)} M (${pct(c.flopsFraction, 1)} of base, ${c.speedup.toFixed(2)}x fewer)`),
    row('params', `${c.params} (${pct(c.paramsFraction, 1)} of base)`),
    row('proxy accuracy (validation, after BN re-calibration)', pct(c.proxyAccuracy)),
    row(
      'fine-tuned test accuracy',
      c.finalAccuracy === null
        ? 'not a finalist'
        : `${pct(c.finalAccuracy)} (rung ${c.finalRung}, ${finetuneText(c)}${c.weights === 'proxy' ? '; of the fine-tuned model, not these weights' : ''})`,
    ),
    row('latency', c.latencyMs === null ? 'not measured' : `${c.latencyMs.toFixed(3)} ms per image`),
    row(
      'base model',
      `${c.base.checkpoint ?? '(none)'}: ${mmacs(c.base.macs)} MMACs, ${c.base.params} params, proxy ${pct(c.base.proxyAccuracy)}, test ${pct(c.base.testAccuracy)}`,
    ),
    row(
      'input',
      `${c.preprocessing.layout} [batch, ${c.preprocessing.layout === 'NCHW' ? `${c.preprocessing.channels}, ${c.preprocessing.imageSize.join(', ')}` : `${c.preprocessing.imageSize.join(', ')}, ${c.preprocessing.channels}`}] float32 (${c.preprocessing.source})`,
    ),
    row('pixels', c.preprocessing.formula),
    ...(c.preprocessing.normalize
      ? [row('normalisation', `mean ${c.preprocessing.normalize.mean.join(', ')}; std ${c.preprocessing.normalize.std.join(', ')}`)]
      : []),
    ...(c.preprocessing.resize ? [row('resize', c.preprocessing.resize)] : []),
    ...(c.preprocessing.colour ? [row('channels', c.preprocessing.colour)] : []),
    row('channel importance', c.importance),
    row('controller', c.controller),
    row('config hash', c.configHash),
    row('created', c.createdAt),
    '',
    '## Channels per group',
    '',
    '| group | base | kept | ratio |',
    '|---|---:|---:|---:|',
    ...c.groups.map((g) => `| ${e(g.id)} | ${g.baseChannels} | ${g.keptChannels} | ${g.ratio.toFixed(3)} |`),
    '',
    '## Use',
    '',
    ...(c.files.includes('model.json')
      ? ['```js', "const model = await tf.loadLayersModel('file://path/to/this/folder/model.json'); // tfjs-node; a URL in the browser", '```', '']
      : []),
    ...(c.files.includes('model.onnx')
      ? [
          c.onnxInput.layout === 'NHWC'
            ? `\`model.onnx\` takes NHWC images (\`${c.onnxInput.name}\`, [batch, H, W, C], float32, the same pixels as the tfjs model) and returns the logits:`
            : `\`model.onnx\` takes NCHW images (\`${c.onnxInput.name}\`, [batch, C, H, W], float32, as the base model did) and returns the logits:`,
          '',
          '```js',
          "const session = await ort.InferenceSession.create('path/to/this/folder/model.onnx'); // onnxruntime-node or onnxruntime-web",
          `const out = await session.run({ ${JSON.stringify(c.onnxInput.name)}: new ort.Tensor('float32', pixels, [${c.onnxInput.layout === 'NHWC' ? 'n, H, W, C' : 'n, C, H, W'}]) });`,
          '```',
        ]
      : []),
    '',
    '## Reproduce',
    '',
    '```sh',
    c.command,
    '```',
    '',
  ].join('\n');
}

/** Writes the model(s), plan.json, card.json and card.md of one complete trial (`autoprune export`). */
export async function exportTrial(args: ExportOptions): Promise<ExportOutcome> {
  if (!(Number.isInteger(args.trial) && args.trial >= 0)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --trial to be a trial number (integer >= 0), got ${quote(args.trial)}`);
  }
  const { study, trial, fin, parentDir } = await withStore(args.store, async (s) => {
    const st = await requireStudy(s, args.study);
    const t = await s.getTrial(st.name, args.trial);
    if (t === null) {
      const n = (await s.listTrials(st.name)).length;
      const expected = n === 0 ? 'the study has no trials yet' : `expected a number in [0, ${n - 1}]`;
      throw new AutopruneError(ErrorCodes.TRIAL_NOT_FOUND, `Trial ${args.trial} not found in study ${quote(st.name)}; ${expected}`);
    }
    const fin = latestFinal(studyFinals(s, st.name, await s.listTrials(st.name)), t.number);
    // The weights that were scored, from the store, whichever host trained them: a last-rung
    // trial's saved model, or the adapted parent a NetAdapt child was cut from.
    if (fin?.fromTrial != null && fin.modelPath) await pullModel(s, st.name, fin.modelPath);
    const parentDir = !fin && t.parent !== null ? artifactPaths.trialModel(s.artifactDir(st.name), t.parent) : null;
    if (parentDir) await pullModel(s, st.name, parentDir);
    return { study: st, trial: t, fin, parentDir };
  });
  if (trial.state !== 'complete') {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Trial ${trial.number} of study ${quote(study.name)} is ${quote(trial.state)}${trial.error ? ` (${trial.error.split('\n')[0]})` : ''}; expected a complete trial (see \`autoprune pick ${study.name}\`)`,
    );
  }
  const cfg = studyConfig(study);
  await initBackend(args.backend ?? cfg.run.backend);
  const out = args.out ?? join('exports', study.name, `trial-${trial.number}`);
  const formats = new Set<ExportFormat>(args.format?.length ? args.format : EXPORT_FORMATS);
  const files: string[] = [];
  let weights: ModelCard['weights'];
  let onnxInput: ModelCard['onnxInput'] = { name: 'input', layout: 'NHWC' };
  let inputShape: [number, number, number];
  if (cfg.model.checkpoint !== undefined && isOnnxPath(cfg.model.checkpoint)) {
    const built = await buildGraph(study, cfg, trial, fin, parentDir);
    weights = built.weights;
    checkCost(study.name, trial, built.cost);
    onnxInput = { name: built.graph.source.inputName, layout: built.graph.inputLayout };
    const input = built.graph.nodes.find((n) => n.op === 'Input');
    const [c, h, w] = input?.op === 'Input' ? input.shape : [0, 0, 0];
    inputShape = [h, w, c];
    await mkdir(out, { recursive: true });
    if (formats.has('onnx')) {
      await writeFile(join(out, 'model.onnx'), encodeOnnx(graphToOnnx(built.graph)));
      files.push('model.onnx');
    }
    if (formats.has('tfjs')) {
      const twin = tfjsTwin(built.graph);
      if ('model' in twin) {
        try {
          await saveModel(twin.model, out);
          files.push('model.json', 'weights.bin');
        } finally {
          twin.model.dispose();
        }
      } else if (args.format?.includes('tfjs')) {
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `--format tfjs: ${twin.refused}`);
      } else args.onNote?.(`no tfjs model: ${twin.refused}`);
    }
  } else {
    const built = await buildModel(study, cfg, trial, fin, parentDir);
    weights = built.weights;
    inputShape = built.model.inputs[0].shape.slice(1) as [number, number, number];
    files.push(...(await writeTfjsFormats(built.model, out, formats, study.name, trial)));
  }
  await mkdir(out, { recursive: true });
  files.push(...(await writeTrialPlan(out, study, cfg, trial)));
  const base = study.baseCost;
  const card: ModelCard = {
    study: study.name,
    trial: trial.number,
    controller: trial.controller,
    weights,
    importance: cfg.evaluation.importance,
    groups: study.space.groups.map((g, i) => ({
      id: g.id,
      baseChannels: g.channels,
      keptChannels: trial.candidate.channels[i],
      ratio: trial.candidate.channels[i] / g.channels,
    })),
    macs: trial.cost.macs,
    params: trial.cost.params,
    flopsFraction: trial.cost.macs / base.macs,
    speedup: base.macs / trial.cost.macs,
    paramsFraction: trial.cost.params / base.params,
    proxyAccuracy: trial.metrics.proxyAccuracy ?? null,
    finalAccuracy: fin?.finalAccuracy ?? trial.metrics.finalAccuracy ?? null,
    // Finals are the last rung's results; a store from before rungs holds one rung.
    finalRung: fin || trial.metrics.finalAccuracy != null ? Math.max(1, cfg.evaluation.rungs?.length ?? 0) : null,
    finetuneEpochs: fin?.epochs ?? null,
    finetuneBatchesPerEpoch: fin ? (cfg.evaluation.finetune.batchesPerEpoch ?? null) : null,
    latencyMs: fin?.latencyMs ?? trial.metrics.latencyMs ?? null,
    base: {
      checkpoint: cfg.model.checkpoint ?? null,
      macs: base.macs,
      params: base.params,
      proxyAccuracy: study.baseProxyAccuracy,
      testAccuracy: study.baseTestAccuracy,
    },
    configHash: study.configHash,
    preprocessing: preprocessingOf(cfg.data, inputShape, onnxInput.layout),
    onnxInput,
    files,
    command: reproduce(args, out),
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(out, 'card.json'), `${JSON.stringify(card, null, 2)}\n`);
  await writeFile(join(out, 'card.md'), cardMarkdown(card));
  return { out, card };
}
