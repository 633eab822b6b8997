/**
 * Channel-group analysis of a graph (the graph form of ../analysis.ts, same semantics): every
 * producer creates a channel set, each rule says how its output's channels derive from its inputs',
 * element-wise joins union sets (union-find), and a group is a union of sets none of which is
 * fixed. Fixed: the graph input's channels, whatever reaches the output (the classifier is never
 * pruned), and what a rule fixes (a depthwise multiplier > 1, grouped convs). A group's id is the
 * name of its first producer; its `layers` are the nodes that cut weights along its channels.
 */
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import type { GroupSpec } from '../../core/space.js';
import type { ModelGraph } from './graph.js';
import { type Channels, type Coupling, ruleOf, type Seg, type Shape } from './rules/index.js';

export interface ChannelSet {
  readonly id: number;
  readonly size: number;
  /** Name of the node that produced it. */
  readonly producer: string;
}

export interface GraphAnalysis {
  readonly graph: ModelGraph;
  /** Per node (graph order): indices of the nodes it reads. */
  readonly inputs: readonly (readonly number[])[];
  /** Per node: its output's shape (one image) and channel structure. */
  readonly shapes: readonly Shape[];
  readonly channels: readonly Channels[];
  readonly sets: readonly ChannelSet[];
  /** Group index of each set's channels, or -1 when the set is fixed (never pruned). */
  readonly setGroup: readonly number[];
  readonly groups: readonly GroupSpec[];
  /** Per group: the nodes whose output is exactly that group's channel set (its producers). */
  readonly producers: readonly (readonly number[])[];
}

/** Node indices of each node's inputs; names not defined before their reader are an error. */
export function inputIndices(graph: ModelGraph): number[][] {
  const index = new Map<string, number>();
  return graph.nodes.map((n, i) => {
    const ins = n.inputs.map((name) => {
      const j = index.get(name);
      if (j === undefined)
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Node \`${n.name}\` reads \`${name}\`, which is not defined before it`);
      return j;
    });
    if (index.has(n.name)) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Two nodes are named \`${n.name}\`; expected unique names`);
    index.set(n.name, i);
    return ins;
  });
}

/** Output shape of every node (one image), from the rules. */
export function inferShapes(graph: ModelGraph, inputs = inputIndices(graph)): Shape[] {
  const shapes: Shape[] = [];
  graph.nodes.forEach((n, i) =>
    shapes.push(
      ruleOf(n).shape(
        n,
        inputs[i].map((j) => shapes[j]),
      ),
    ),
  );
  return shapes;
}

export function nodeIndex(graph: ModelGraph, name: string): number {
  const i = graph.nodes.findIndex((n) => n.name === name);
  if (i < 0) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `The graph has no node ${quote(name)}`);
  return i;
}

export function analyzeGraph(graph: ModelGraph): GraphAnalysis {
  const inputs = inputIndices(graph);
  const shapes = inferShapes(graph, inputs);
  const sets: ChannelSet[] = [];
  const parent: number[] = [];
  const fixed = new Set<number>();
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]];
      a = parent[a];
    }
    return a;
  };
  const channels: Channels[] = [];
  graph.nodes.forEach((node, i) => {
    const coupling: Coupling = {
      newSet(size): Seg {
        const id = sets.length;
        sets.push({ id, size, producer: node.name });
        parent.push(id);
        return { set: id, size };
      },
      fix: (segs) => segs.forEach((s) => fixed.add(s.set)),
      union(a, b) {
        const ra = find(a);
        const rb = find(b);
        if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
      },
      fail(what): never {
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Node \`${node.name}\` (${node.op}) ${what}`);
      },
    };
    const ins = inputs[i];
    channels.push(
      ruleOf(node).channels(
        node,
        ins.map((j) => channels[j]),
        coupling,
        { ins: ins.map((j) => shapes[j]), out: shapes[i] },
      ),
    );
  });
  const out = nodeIndex(graph, graph.output);
  for (const s of channels[out].segs) fixed.add(s.set);

  const { setGroup, groupSets } = numberGroups(sets, find, fixed);
  const producers: number[][] = groupSets.map(() => []);
  graph.nodes.forEach((n, i) => {
    const segs = channels[i].segs;
    if (segs.length === 1 && sets[segs[0].set].producer === n.name && setGroup[segs[0].set] >= 0) producers[setGroup[segs[0].set]].push(i);
  });
  const groups: GroupSpec[] = groupSets.map((ids, g) => ({
    id: sets[ids[0]].producer,
    channels: sets[ids[0]].size,
    layers: graph.nodes.filter((n, i) => ruleOf(n).owns && channels[i].segs.some((s) => setGroup[s.set] === g)).map((n) => n.name),
  }));
  return { graph, inputs, shapes, channels, sets, setGroup, groups, producers };
}

/** Kept size of a tensor's axis 1 for per-group kept counts (`null` = unpruned); features when flattened. */
export function keptCount(a: GraphAnalysis, ch: Channels, kept: readonly number[] | null): number {
  let n = 0;
  for (const s of ch.segs) {
    const g = a.setGroup[s.set];
    n += kept && g >= 0 ? kept[g] : s.size;
  }
  return n * (ch.flat?.spatial ?? 1);
}

/** Kept indices (ascending, base numbering) of a tensor's axis 1, given each group's kept channels. */
export function keptIndices(a: GraphAnalysis, ch: Channels, keep: readonly (readonly number[])[]): number[] {
  const idx: number[] = [];
  let offset = 0;
  for (const seg of ch.segs) {
    const g = a.setGroup[seg.set];
    if (g < 0) for (let i = 0; i < seg.size; i++) idx.push(offset + i);
    else for (const i of keep[g]) idx.push(offset + i);
    offset += seg.size;
  }
  if (!ch.flat) return idx;
  const { spatial, order } = ch.flat;
  const out: number[] = [];
  if (order === 'hwc') for (let s = 0; s < spatial; s++) for (const k of idx) out.push(s * offset + k);
  else for (const k of idx) for (let s = 0; s < spatial; s++) out.push(k * spatial + s);
  return out;
}

/**
 * Channel sets into groups: one group per union-find root with no fixed member, numbered in the
 * order of each root's first set; per set its group index, or -1 when its root is fixed.
 */
export function numberGroups(
  sets: readonly { readonly id: number }[],
  find: (id: number) => number,
  fixed: Iterable<number>,
): { setGroup: number[]; groupSets: number[][] } {
  const rootFixed = new Set<number>();
  for (const f of fixed) rootFixed.add(find(f));
  const rootGroup = new Map<number, number>();
  const groupSets: number[][] = [];
  const setGroup = sets.map((s) => {
    const r = find(s.id);
    if (rootFixed.has(r)) return -1;
    let g = rootGroup.get(r);
    if (g === undefined) {
      g = groupSets.length;
      rootGroup.set(r, g);
      groupSets.push([]);
    }
    groupSets[g].push(s.id);
    return g;
  });
  return { setGroup, groupSets };
}
