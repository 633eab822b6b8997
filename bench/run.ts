/**
 * `npm run bench [-- --quick] [--only <model>] [--section <name>] [--json <file>]`
 *
 * Runs the sections in `sections` in order and prints one Markdown report on stdout (progress goes
 * to stderr). Speeds are compared only within one run, side by side, because the host's load
 * changes between runs. Exit code 1 when a section reports a failure (e.g. leaked tensors),
 * 2 on bad flags.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/engine/backend.js';
import { isZooName, ZOO_NAMES, type ZooName } from '../src/model/zoo.js';
import {
  BENCH_BACKENDS,
  BENCH_SETTINGS,
  describeSettings,
  type ModelMeasurement,
  measureModel,
  memorySnapshot,
  renderMemoryTable,
  renderSpeedupTable,
  renderThroughputTable,
  speedups,
} from './models.js';
import { poolSection } from './pool.js';
import { proxyEnginesSection } from './proxy-engines.js';
import { trainEnginesSection } from './train-engines.js';

export interface HostInfo {
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  /** 1-minute load average at start: a loaded host depresses every number in the report. */
  readonly loadAvg1: number;
  readonly tfjs: string;
  readonly wasmSimd: boolean | null;
  readonly wasmThreads: number | null;
}

export interface BenchContext {
  readonly quick: boolean;
  /** Restrict model-based sections to this zoo model; null = all. */
  readonly only: ZooName | null;
  readonly host: HostInfo;
  /** Progress line on stderr. */
  readonly log: (line: string) => void;
}

export interface SectionOutput {
  /** Markdown body of the section (below its title). */
  readonly markdown: string;
  /** Machine-readable results, written under `sections[name]` by `--json`. */
  readonly data: unknown;
  /** One line each; any failure makes the run exit non-zero. */
  readonly failures: readonly string[];
}

export interface BenchSection {
  /** Key in the JSON output. */
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<SectionOutput>;
}

/** Zoo models x {wasm, cpu}: training and inference img/s, GFLOP/s, wasm/cpu speed-ups, memory. */
export const modelThroughputSection: BenchSection = {
  name: 'models',
  title: 'Zoo models: training and inference throughput (28x28x1, 10 classes, width 1)',
  async run(ctx) {
    const settings = BENCH_SETTINGS[ctx.quick ? 'quick' : 'full'];
    const results: ModelMeasurement[] = [];
    const failures: string[] = [];
    for (const model of ctx.only ? [ctx.only] : ZOO_NAMES) {
      for (const backend of BENCH_BACKENDS) {
        const t0 = performance.now();
        const r = await measureModel(model, backend, settings[backend]);
        results.push(r);
        const trainText = Number.isFinite(r.trainImgPerSec) ? `${r.trainImgPerSec.toFixed(1)} img/s` : 'not measured';
        ctx.log(
          `${model} / ${backend}: train ${trainText}, infer ${r.inferImgPerSec.toFixed(1)} img/s ` +
            `(${((performance.now() - t0) / 1000).toFixed(1)} s); rss ${r.memory.rssMiB.toFixed(0)} MiB, ` +
            `heap ${r.memory.heapUsedMiB.toFixed(0)} MiB, numTensors ${r.memory.numTensors}`,
        );
        if (r.leakedTensors !== 0)
          failures.push(`${model} / ${backend}: ${r.leakedTensors} tensors leaked (tf.memory().numTensors did not return to its baseline)`);
      }
    }
    const ratios = speedups(results);
    const markdown = [
      renderThroughputTable(results),
      '',
      'MMACs per image as counted by `costOf` (conv and dense only). 1 MAC = 2 FLOPs: GFLOP/s = 2 × MACs × img/s / 1e9. ' +
        'Training GFLOP/s counts the forward pass only (a training step does about 3× that work). ' +
        '`cpu` is the pure-JS reference backend, measured with tiny runs.',
      '',
      ...BENCH_BACKENDS.map((b) => `- ${describeSettings(b, settings[b])}`),
      '',
      '**Speed-up wasm / cpu** (same run, side by side):',
      '',
      renderSpeedupTable(ratios),
      '',
      '**Memory** after each model was disposed. The invariant is numTensors returning to its baseline; ' +
        'rss includes the wasm heap, which grows to the largest working set so far and never shrinks.',
      '',
      renderMemoryTable(results),
    ].join('\n');
    return { markdown, data: { settings, results, speedups: ratios }, failures };
  },
};

/** The report's sections, in order. */
export const sections: BenchSection[] = [modelThroughputSection, poolSection, proxyEnginesSection, trainEnginesSection];

export async function hostInfo(): Promise<HostInfo> {
  const wasm = await initBackend('wasm');
  const cpus = os.cpus();
  return {
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    loadAvg1: os.loadavg()[0],
    tfjs: wasm.tfjsVersion,
    wasmSimd: wasm.wasmSimd ?? null,
    wasmThreads: wasm.threads ?? null,
  };
}

export function renderHost(h: HostInfo): string {
  return [
    `- node ${h.node}; CPU ${h.cpu}, ${h.cores} cores; load average (1 min) at start ${h.loadAvg1.toFixed(2)}`,
    `- tfjs ${h.tfjs}; wasm SIMD ${h.wasmSimd ?? 'unknown'}, wasm threads ${h.wasmThreads ?? 'unknown'}`,
  ].join('\n');
}

interface CliOptions {
  readonly quick: boolean;
  readonly only: ZooName | null;
  /** Run only this section (its `name`); null = all. */
  readonly section: string | null;
  readonly json: string | null;
}

class UsageError extends Error {}

const USAGE = 'usage: npm run bench -- [--quick] [--only <model>] [--section <name>] [--json <file>]';

export function parseCli(argv: readonly string[]): CliOptions {
  let values: { quick?: boolean; only?: string; section?: string; json?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        section: { type: 'string' },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) throw new UsageError(USAGE);
  if (values.only !== undefined && !isZooName(values.only)) {
    throw new UsageError(`Expected \`--only\` to be one of ${ZOO_NAMES.join(', ')}, got \`${values.only}\``);
  }
  if (values.section !== undefined && !sections.some((s) => s.name === values.section)) {
    throw new UsageError(`Expected \`--section\` to be one of ${sections.map((s) => s.name).join(', ')}, got \`${values.section}\``);
  }
  return { quick: values.quick ?? false, only: (values.only as ZooName | undefined) ?? null, section: values.section ?? null, json: values.json ?? null };
}

export async function main(argv: readonly string[]): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(e.message);
    return 2;
  }
  const started = performance.now();
  const host = await hostInfo();
  const ctx: BenchContext = { quick: cli.quick, only: cli.only, host, log: (line) => console.error(`[bench] ${line}`) };
  const out: string[] = [`# autoprune bench${cli.quick ? ' (--quick: smoke run, numbers are indicative only)' : ''}`, '', renderHost(host)];
  const data: Record<string, unknown> = {};
  const failures: string[] = [];
  for (const section of sections.filter((s) => cli.section === null || s.name === cli.section)) {
    const r = await section.run(ctx);
    out.push('', `## ${section.title}`, '', r.markdown);
    data[section.name] = r.data;
    failures.push(...r.failures);
  }
  const end = memorySnapshot();
  out.push('', `Total ${((performance.now() - started) / 1000).toFixed(1)} s; at exit rss ${end.rssMiB.toFixed(0)} MiB, tf numTensors ${end.numTensors}.`);
  if (failures.length > 0) out.push('', '**FAILURES**', '', ...failures.map((f) => `- ${f}`));
  console.log(out.join('\n'));
  if (cli.json) {
    writeFileSync(cli.json, `${JSON.stringify({ date: new Date().toISOString(), quick: cli.quick, host, sections: data, failures }, null, 2)}\n`);
    ctx.log(`wrote ${cli.json}`);
  }
  return failures.length > 0 ? 1 : 0;
}

const isMain = process.argv[1] != null && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isMain) process.exitCode = await main(process.argv.slice(2));
