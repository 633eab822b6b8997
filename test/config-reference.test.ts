import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { z } from 'zod';
import { documentedKeys, readConfigReference, renderConfigReference } from '../scripts/config-reference.js';
import { configSchema } from '../src/config/schema.js';

const ROOT = resolve(import.meta.dirname, '..');

/** Every key path the runtime schema accepts, walked through zod's own definitions (the oracle). */
function runtimeKeys(schema: z.ZodType, prefix = '', out = new Set<string>()): Set<string> {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  if (def.type === 'object') {
    for (const [k, v] of Object.entries(def.shape as Record<string, z.ZodType>)) {
      const path = prefix ? `${prefix}.${k}` : k;
      out.add(path);
      runtimeKeys(v, path, out);
    }
  } else if (['optional', 'default', 'prefault', 'nullable', 'readonly'].includes(def.type)) {
    runtimeKeys(def.innerType as z.ZodType, prefix, out);
  } else if (def.type === 'pipe') {
    runtimeKeys(def.in as z.ZodType, prefix, out);
  } else if (def.type === 'union') {
    for (const o of def.options as z.ZodType[]) runtimeKeys(o, prefix, out);
  }
  return out;
}

describe('docs/configuration.md', () => {
  test('is what scripts/config-reference.ts generates from the schema', async () => {
    const committed = await readFile(join(ROOT, 'docs/configuration.md'), 'utf8');
    const generated = renderConfigReference(ROOT);
    if (committed !== generated) {
      const a = committed.split('\n');
      const b = generated.split('\n');
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      assert.fail(
        `docs/configuration.md is out of date with src/config: run \`npm run docs:config\` and commit the result ` +
          `(first difference at line ${i + 1}: committed ${JSON.stringify(a[i] ?? '<end>')}, generated ${JSON.stringify(b[i] ?? '<end>')})`,
      );
    }
  });

  test('documents exactly the keys the runtime schema accepts', () => {
    const fromSource = new Set(documentedKeys(readConfigReference(ROOT)));
    const fromZod = runtimeKeys(configSchema);
    assert.deepEqual(
      [...fromZod].filter((k) => !fromSource.has(k)),
      [],
      'keys the schema accepts but the reference misses',
    );
    assert.deepEqual(
      [...fromSource].filter((k) => !fromZod.has(k)),
      [],
      'keys the reference lists but the schema rejects',
    );
  });

  test('every key has a doc comment, except the two per-stage engine names that run.engine describes', () => {
    assert.deepEqual(readConfigReference(ROOT).undocumented, ['run.engine.proxy', 'run.engine.train']);
  });
});

describe('config reference generator', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'autoprune-config-ref-'));
    const files: Record<string, string> = {
      'src/config/leaves.ts': [
        "import { z } from 'zod';",
        "export const count = (expect = 'a whole number >= 1') => z.number({ error: expect });",
        "export const where = () => z.string({ error: 'a folder' });",
      ].join('\n'),
      'src/config/sections/kinds.ts': "export const KINDS = ['folder', 'npy'] as const;\n",
      'src/config/sections/input.ts': [
        '/** The `input` section: where images come from. */',
        "import { z } from 'zod';",
        "import { count, where } from '../leaves.js';",
        "import { KINDS } from './kinds.js';",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the fixture's source holds a template literal
        "const SHAPES = `one of ${KINDS.join(' or ')}`;",
        '/** How the files are laid out. */',
        "export const sourceSchema = z.discriminatedUnion('format', [",
        "  z.strictObject({ /** One folder per class. */ format: z.literal('folder'), /** Default 1. */ depth: count().optional() }),",
        "  z.strictObject({ /** Arrays. */ format: z.literal('npy'), /** Where x.npy is. */ dir: where() }),",
        ']);',
        'export const inputSchema = z.strictObject({',
        '  /** Layout, by `format`. */',
        '  source: sourceSchema,',
        '  /** Channel order. */',
        "  order: z.union([z.enum(['rgb', 'bgr']), z.strictObject({ /** Default 0. */ first: count('a channel index') })]).default('rgb'),",
        "  kind: z.string({ error: SHAPES }).default('npy'),",
        '  /** Grey or colour. */',
        "  channels: z.union([z.literal(1), z.literal(3)], { error: '1 (grey) or 3 (RGB)' }).optional(),",
        '  /** Nested. */',
        '  resize: z.strictObject({ /** Pixels. */ side: count().default(32) }).prefault({}),',
        '});',
      ].join('\n'),
      'src/config/schema.ts': [
        "import { z } from 'zod';",
        "import { inputSchema } from './sections/input.js';",
        'export const configSchema = z.strictObject({',
        '  /** Study name. Required. */',
        "  name: z.string({ error: 'a name' }),",
        '  input: inputSchema.prefault({}),',
        '});',
      ].join('\n'),
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), `${text}\n`);
    }
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('reads new keys, unions, discriminated unions, nested mappings and imported constants', () => {
    const ref = readConfigReference(root);
    assert.deepEqual(ref.required, ['name']);
    assert.deepEqual(ref.topLevel, [{ path: 'name', accepts: 'a name', doc: 'Study name. Required.' }]);
    const [input] = ref.sections;
    assert.equal(input.key, 'input');
    assert.equal(input.doc, 'The `input` section: where images come from.');
    assert.equal(input.required, false);
    const row = (p: string) => input.rows.find((r) => r.path === p);
    assert.equal(row('input.source')?.accepts, 'a mapping whose `format` picks its kind (below)');
    assert.equal(row('input.source.format')?.accepts, 'one of `folder`, `npy`');
    assert.equal(row('input.order')?.accepts, 'one of `rgb`, `bgr`, or a mapping (keys below)');
    assert.equal(row('input.order')?.doc, 'Channel order. Default `rgb`.');
    assert.deepEqual(row('input.order.first'), { path: 'input.order.first', accepts: 'a channel index', doc: 'Default 0.' });
    assert.deepEqual(row('input.kind'), { path: 'input.kind', accepts: 'one of folder or npy', doc: 'Default `npy`.' });
    assert.equal(row('input.channels')?.accepts, '1 (grey) or 3 (RGB)', "a union of plain values reads as the union's own expectation");
    assert.equal(row('input.resize')?.doc, 'Nested.', 'an empty prefault adds no default text');
    assert.deepEqual(row('input.resize.side'), { path: 'input.resize.side', accepts: 'a whole number >= 1', doc: 'Pixels. Default `32`.' });
    assert.deepEqual(ref.undocumented, ['input.kind']);
    const [choice] = input.choices;
    assert.equal(choice.path, 'input.source');
    assert.equal(choice.doc, 'How the files are laid out.');
    assert.deepEqual(
      choice.variants.map((v) => [v.value, v.doc, v.rows]),
      [
        ['folder', 'One folder per class.', [{ path: 'input.source.depth', accepts: 'a whole number >= 1', doc: 'Default 1.' }]],
        ['npy', 'Arrays.', [{ path: 'input.source.dir', accepts: 'a folder', doc: 'Where x.npy is.' }]],
      ],
    );
    const md = renderConfigReference(root);
    assert.match(md, /^#### `format: npy`$/m);
    assert.match(md, /^\| `input\.order` \| one of `rgb`, `bgr`, or a mapping \(keys below\) \| Channel order\. Default `rgb`\. \|$/m);
  });
});
