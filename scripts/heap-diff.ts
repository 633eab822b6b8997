/**
 * What a V8 heap grew by between two snapshots (e.g. scripts/soak.ts --heap-at 200,1000), per kind
 * of object: node type and name (strings by their first 60 characters), with the change in count
 * and in self size (bytes), largest change first. Chrome DevTools' Comparison view shows the same
 * by constructor; this prints it on a machine without a browser.
 *   node --import tsx scripts/heap-diff.ts <earlier.heapsnapshot> <later.heapsnapshot> [rows, default 40]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: string[]; readonly node_types: [string[], ...unknown[]] } };
  readonly nodes: number[];
  readonly strings: string[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

function byKind(file: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const kinds = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const t = types[s.nodes[i + type]];
    const n = s.strings[s.nodes[i + name]];
    const key = `${t}\t${(STRING_TYPES.has(t) ? n.slice(0, 60) : n).replace(/\s+/g, ' ')}`;
    const k = kinds.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += s.nodes[i + size];
    kinds.set(key, k);
  }
  return kinds;
}

const [earlierFile, laterFile, rowsArg] = process.argv.slice(2);
if (!earlierFile || !laterFile) {
  console.error('usage: scripts/heap-diff.ts <earlier.heapsnapshot> <later.heapsnapshot> [rows]');
  process.exit(2);
}
const earlier = byKind(earlierFile);
const later = byKind(laterFile);
const rows: { key: string; count: number; bytes: number }[] = [];
for (const key of new Set([...earlier.keys(), ...later.keys()])) {
  const a = earlier.get(key) ?? { count: 0, bytes: 0 };
  const b = later.get(key) ?? { count: 0, bytes: 0 };
  rows.push({ key, count: b.count - a.count, bytes: b.bytes - a.bytes });
}
rows.sort((x, y) => Math.abs(y.bytes) - Math.abs(x.bytes));
console.log(`total self size change: ${rows.reduce((t, r) => t + r.bytes, 0)} bytes`);
console.log('bytes\tcount\ttype\tname');
for (const r of rows.slice(0, Number(rowsArg ?? 40))) console.log(`${r.bytes}\t${r.count}\t${r.key}`);
