/**
 * `OnnxGraph` <-> ONNX ModelProto bytes, through protobufjs and the ONNX project's own schema
 * (proto/onnx.proto, copied unchanged from onnx/onnx at release 1.23.0, Apache-2.0).
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { type OnnxAttr, type OnnxGraph, type OnnxInitializer, type OnnxValue, OPSET } from './onnx.js';

/** IR version 8 (ONNX 1.10) is read by every onnxruntime since 1.10. */
const IR_VERSION = 8;
const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

let root: protobuf.Root | null = null;
function schema(): { model: protobuf.Type } {
  root ??= protobuf.parse(readFileSync(new URL('./proto/onnx.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
  return { model: root.lookupType('onnx.ModelProto') };
}

function attribute(name: string, a: OnnxAttr): Record<string, unknown> {
  if ('i' in a) return { name, type: ATTR.INT, i: a.i };
  if ('f' in a) return { name, type: ATTR.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: ATTR.INTS, ints: [...a.ints] };
  return { name, type: ATTR.STRING, s: new TextEncoder().encode(a.s) };
}

function valueInfo(v: OnnxValue): Record<string, unknown> {
  const dim = v.shape.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d }));
  return { name: v.name, type: { tensor_type: { elem_type: FLOAT, shape: { dim } } } };
}

function tensor(t: OnnxInitializer): Record<string, unknown> {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name: t.name, dims: [...t.dims], data_type: t.data instanceof Float32Array ? FLOAT : INT64, raw_data: bytes };
}

/** The serialized ModelProto (what a `.onnx` file holds). */
export function encodeOnnx(g: OnnxGraph, producerVersion = '0', opset = g.opset ?? OPSET): Uint8Array {
  const { model } = schema();
  const msg = model.fromObject({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: opset }],
    producer_name: 'autoprune',
    producer_version: producerVersion,
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        op_type: n.op,
        name: n.name,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs ?? {}).map(([k, a]) => attribute(k, a)),
      })),
      initializer: g.initializers.map(tensor),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
  });
  return model.encode(msg).finish();
}

/** Decoded ModelProto as a plain object (tests and `inspect` read it). */
export function decodeOnnx(bytes: Uint8Array): Record<string, unknown> {
  const { model } = schema();
  return model.toObject(model.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as Record<string, unknown>;
}

/**
 * Decoded ModelProto with `bytes` fields (raw_data) left as Uint8Array views: an importer reads
 * tens of megabytes of weights, which `decodeOnnx`'s number arrays would copy element by element.
 */
export function decodeOnnxModel(bytes: Uint8Array): Record<string, unknown> {
  const { model } = schema();
  return model.toObject(model.decode(bytes), { longs: Number, defaults: false }) as Record<string, unknown>;
}
