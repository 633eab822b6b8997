/**
 * Graph -> `OnnxGraph` (../onnx.ts' data type, so the BN passes of ../onnx-bn.ts, the channel
 * padding of ../onnx-pad.ts and the encoder of ../onnx-proto.ts apply unchanged), one rule's `onnx`
 * member per node. The ONNX model takes the input in the graph's own layout (an NHWC graph gets a
 * Transpose after its input), under `source.inputName`, with a symbolic batch axis; its output is
 * `source.outputName`, [batch, classes].
 */
import { OnnxBuilder, type OnnxGraph } from '../onnx.js';
import { inferShapes, inputIndices } from './analyze.js';
import type { ModelGraph } from './graph.js';
import { ruleOf } from './rules/index.js';

export function graphToOnnx(graph: ModelGraph, name = 'autoprune'): OnnxGraph {
  const inputs = inputIndices(graph);
  const shapes = inferShapes(graph, inputs);
  const b = new OnnxBuilder();
  b.unique(graph.source.inputName);
  b.unique(graph.source.outputName);
  const values: string[] = [];
  graph.nodes.forEach((node, i) => {
    const ins = inputs[i];
    values.push(ruleOf(node).onnx(node, { b, graph, ins: ins.map((j) => values[j]), inShapes: ins.map((j) => shapes[j]), outShape: shapes[i] }));
  });
  const outIndex = graph.nodes.findIndex((n) => n.name === graph.output);
  b.nodes.push({ op: 'Identity', name: `${graph.source.outputName}/Identity`, inputs: [values[outIndex]], outputs: [graph.source.outputName] });
  const inNode = graph.nodes.find((n) => n.name === graph.input);
  if (inNode?.op !== 'Input') throw new Error(`graph input \`${graph.input}\` is not an Input node`);
  const [c, h, w] = inNode.shape;
  return {
    name,
    nodes: b.nodes,
    initializers: b.initializers,
    inputs: [{ name: graph.source.inputName, shape: ['batch', ...(graph.inputLayout === 'NHWC' ? [h, w, c] : [c, h, w])] }],
    outputs: [{ name: graph.source.outputName, shape: ['batch', ...shapes[outIndex]] }],
  };
}
