/**
 * A ModelGraph on disk: `graph.json` (version, input/output, layout, source, and every node with its
 * attributes; each weight array replaced by `{ "offset", "length" }` into the binary file) and
 * `graph.bin` (the Float32Arrays concatenated, little-endian, in node order). The binary is not
 * called weights.bin so a graph and a tfjs model.json + weights.bin can share one model folder.
 * A reader refuses a newer version, an unknown op and offsets outside the binary, each in one line.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import type { ModelGraph, Node, Op } from './graph.js';

export const GRAPH_JSON = 'graph.json';
export const GRAPH_BIN = 'graph.bin';
/** Bumped when a reader of the previous version would misread the files. */
export const GRAPH_FORMAT_VERSION = 1;

/** The ops a reader knows (a file naming another op was written by a newer autoprune). */
const OPS = {
  Input: true,
  Conv: true,
  BatchNormalization: true,
  Activation: true,
  Add: true,
  Mul: true,
  Concat: true,
  Pool: true,
  GlobalPool: true,
  Pad: true,
  Flatten: true,
  Dense: true,
  Identity: true,
} as const satisfies Record<Op, true>;

interface WeightRef {
  /** Bytes from the start of graph.bin (a multiple of 4). */
  readonly offset: number;
  /** Float32 values. */
  readonly length: number;
}

interface GraphFile {
  readonly format: 'autoprune-graph';
  readonly version: number;
  readonly input: string;
  readonly output: string;
  readonly inputLayout: ModelGraph['inputLayout'];
  readonly source: ModelGraph['source'];
  readonly nodes: readonly Record<string, unknown>[];
}

const isRef = (v: unknown): v is WeightRef =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 2 && 'offset' in v && 'length' in v;

/** The graph as its two files' contents. */
export function encodeGraph(graph: ModelGraph): { json: string; bin: Uint8Array } {
  const arrays: Float32Array[] = [];
  let offset = 0;
  const nodes = graph.nodes.map((n) =>
    Object.fromEntries(
      Object.entries(n).map(([k, v]) => {
        if (!(v instanceof Float32Array)) return [k, v];
        const ref: WeightRef = { offset, length: v.length };
        arrays.push(v);
        offset += v.byteLength;
        return [k, ref];
      }),
    ),
  );
  const file: GraphFile = {
    format: 'autoprune-graph',
    version: GRAPH_FORMAT_VERSION,
    input: graph.input,
    output: graph.output,
    inputLayout: graph.inputLayout,
    source: graph.source,
    nodes,
  };
  const bin = new Uint8Array(offset);
  let at = 0;
  for (const a of arrays) {
    bin.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  return { json: JSON.stringify(file), bin };
}

function bad(where: string, what: string): AutopruneError {
  return new AutopruneError(ErrorCodes.MODEL_NOT_FOUND, `Graph ${where}: ${what}`);
}

/** The graph from its files' contents; `where` names them in messages. */
export function decodeGraph(json: string, bin: Uint8Array, where = GRAPH_JSON): ModelGraph {
  let file: GraphFile;
  try {
    file = JSON.parse(json) as GraphFile;
  } catch (e) {
    throw bad(where, `not valid JSON (${(e as Error).message})`);
  }
  if (file?.format !== 'autoprune-graph') throw bad(where, `format ${quote(file?.format)}; expected \`autoprune-graph\``);
  if (!Number.isInteger(file.version) || file.version < 1 || file.version > GRAPH_FORMAT_VERSION) {
    throw bad(where, `version ${quote(file.version)}; this autoprune reads versions 1 to ${GRAPH_FORMAT_VERSION}`);
  }
  if (!Array.isArray(file.nodes)) throw bad(where, 'no `nodes` array');
  // One aligned copy, so every weight is a view of it.
  const values = new Float32Array(bin.byteLength >> 2);
  new Uint8Array(values.buffer).set(bin.subarray(0, values.length * 4));
  const nodes = file.nodes.map((raw, i) => {
    if (!Object.hasOwn(OPS, String(raw.op)))
      throw bad(where, `node ${i} (${quote(raw.name)}) has op ${quote(raw.op)}; expected one of ${Object.keys(OPS).join(', ')}`);
    return Object.fromEntries(
      Object.entries(raw).map(([k, v]) => {
        if (!isRef(v)) return [k, v];
        const { offset, length } = v;
        if (!Number.isInteger(offset) || !Number.isInteger(length) || offset % 4 !== 0 || offset < 0 || length < 0 || offset + 4 * length > bin.byteLength) {
          throw bad(
            where,
            `${quote(`${String(raw.name)}.${k}`)} at byte ${quote(offset)} with ${quote(length)} values lies outside ${GRAPH_BIN} (${bin.byteLength} bytes)`,
          );
        }
        return [k, values.subarray(offset / 4, offset / 4 + length)];
      }),
    ) as unknown as Node;
  });
  return { nodes, input: file.input, output: file.output, inputLayout: file.inputLayout, source: file.source };
}

export async function saveGraph(graph: ModelGraph, dir: string): Promise<void> {
  const { json, bin } = encodeGraph(graph);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, GRAPH_BIN), bin);
  await writeFile(join(dir, GRAPH_JSON), json);
}

/** Whether `dir` holds a saved graph. */
export function hasGraph(dir: string): boolean {
  return existsSync(join(dir, GRAPH_JSON));
}

export async function loadGraph(dir: string): Promise<ModelGraph> {
  const jsonPath = join(dir, GRAPH_JSON);
  if (!existsSync(jsonPath)) throw new AutopruneError(ErrorCodes.MODEL_NOT_FOUND, `No graph in ${quote(dir)}: ${GRAPH_JSON} is missing`);
  const binPath = join(dir, GRAPH_BIN);
  if (!existsSync(binPath)) throw new AutopruneError(ErrorCodes.MODEL_NOT_FOUND, `Graph ${quote(jsonPath)}: ${GRAPH_BIN} is missing next to it`);
  return decodeGraph(await readFile(jsonPath, 'utf8'), new Uint8Array(await readFile(binPath)), jsonPath);
}
