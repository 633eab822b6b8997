/**
 * Writes docs/configuration.md, the config reference, from the schema's source: src/config/schema.ts
 * gives the sections and their order, src/config/sections/*.ts each key, its JSDoc comment (which
 * states the default) and what it accepts. The files are read with the TypeScript compiler API as
 * syntax (no type checking, so it takes well under a second): a new key, a nested mapping, a union
 * or a discriminated union shows up without editing this script. A key whose comment does not say
 * "Default" gets the value of its `.default(…)` call appended. The comments exist only in the
 * source, hence the source rather than zod's runtime schema; the test checks that both agree on the
 * set of keys.
 *   npm run docs:config                                      writes docs/configuration.md
 *   node --import tsx scripts/config-reference.ts --check    exits 1 when the committed file is stale
 * test/config-reference.test.ts runs the check in `npm test`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** What one config key accepts, as the schema's source says it. */
type Shape =
  | { kind: 'leaf'; accepts: string }
  | { kind: 'object'; props: Prop[]; origin: string; declDoc: string }
  | { kind: 'union'; options: Shape[] }
  | { kind: 'choice'; discriminator: string; variants: Shape[]; declDoc: string };

interface Prop {
  key: string;
  doc: string;
  shape: Shape;
  /** Source of the outermost `.default(…)`/`.prefault(…)` value, rendered; undefined when none. */
  defaultText?: string;
  /** `.optional()`, `.default()` or `.prefault()` seen: the key may be left out. */
  omittable: boolean;
}

/** One row of a reference table. */
export interface KeyRow {
  path: string;
  accepts: string;
  doc: string;
}

interface Choice {
  path: string;
  discriminator: string;
  doc: string;
  variants: { value: string; doc: string; rows: KeyRow[] }[];
}

interface Section {
  key: string;
  doc: string;
  required: boolean;
  rows: KeyRow[];
  choices: Choice[];
}

export interface ConfigReference {
  topLevel: KeyRow[];
  sections: Section[];
  /** Top-level keys and sections a config must have. */
  required: string[];
  /** Keys without a doc comment (they still get a row). */
  undocumented: string[];
}

type Const = string | number | boolean | Const[];

/** Parses files on demand and resolves names through relative imports and re-exports. */
class Sources {
  private readonly files = new Map<string, ts.SourceFile>();

  file(path: string): ts.SourceFile {
    let sf = this.files.get(path);
    if (sf === undefined) {
      sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
      this.files.set(path, sf);
    }
    return sf;
  }

  /** The declaration of `name` as seen from `sf`: a variable or a function, followed through imports. */
  resolve(name: string, sf: ts.SourceFile, depth = 0): { decl: ts.VariableDeclaration | ts.FunctionDeclaration; sf: ts.SourceFile } | undefined {
    if (depth > 10) return undefined;
    for (const st of sf.statements) {
      if (ts.isVariableStatement(st)) {
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name) && d.name.text === name) return { decl: d, sf };
      } else if (ts.isFunctionDeclaration(st) && st.name?.text === name) {
        return { decl: st, sf };
      }
    }
    for (const st of sf.statements) {
      let imported: string | undefined;
      let spec: ts.Expression | undefined;
      if (ts.isImportDeclaration(st) && st.importClause?.namedBindings && ts.isNamedImports(st.importClause.namedBindings)) {
        const el = st.importClause.namedBindings.elements.find((e) => e.name.text === name);
        if (el) {
          imported = (el.propertyName ?? el.name).getText(sf);
          spec = st.moduleSpecifier;
        }
      } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
        const el = st.exportClause.elements.find((e) => e.name.text === name);
        if (el) {
          imported = (el.propertyName ?? el.name).getText(sf);
          spec = st.moduleSpecifier;
        }
      }
      if (imported === undefined || spec === undefined || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
      const target = resolve(dirname(sf.fileName), spec.text.replace(/\.js$/, '.ts'));
      if (!existsSync(target)) return undefined;
      return this.resolve(imported, this.file(target), depth + 1);
    }
    return undefined;
  }
}

function strip(e: ts.Expression): ts.Expression {
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e)) e = e.expression;
  return e;
}

/** A `/** … *\/` comment's text on one line. */
function commentText(raw: string): string {
  return raw
    .slice(3, -2)
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, '').trim())
    .filter((l) => l !== '')
    .join(' ');
}

/**
 * The JSDoc text of a node on one line, with `@default x` tags as "Default x.". TypeScript attaches
 * JSDoc only when it starts a line; a comment on the same line as the key (`{ /** … *\/ key: … }`)
 * is read from the node's leading comments instead.
 */
function docOf(node: ts.Node): string {
  const parts: string[] = [];
  for (const d of ts.getJSDocCommentsAndTags(node)) {
    if (!ts.isJSDoc(d)) continue;
    const text = ts.getTextOfJSDocComment(d.comment);
    if (text) parts.push(text);
    for (const tag of d.tags ?? []) {
      const t = ts.getTextOfJSDocComment(tag.comment);
      if (tag.tagName.text === 'default' && t) parts.push(`Default ${t}.`);
    }
  }
  if (parts.length === 0) {
    const text = node.getSourceFile().text;
    // Comments before the first line break after the previous token count as that token's trailing ones.
    const ranges = [...(ts.getTrailingCommentRanges(text, node.pos) ?? []), ...(ts.getLeadingCommentRanges(text, node.pos) ?? [])];
    const docs = ranges.map((r) => text.slice(r.pos, r.end)).filter((c) => c.startsWith('/**'));
    if (docs.length > 0) parts.push(commentText(docs[docs.length - 1]));
  }
  return parts
    .join(' ')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}

/** The first `/** … *\/` comment of a file (its header), on one line. */
function fileHeader(sf: ts.SourceFile): string {
  for (const r of ts.getLeadingCommentRanges(sf.text, 0) ?? []) {
    const raw = sf.text.slice(r.pos, r.end);
    if (raw.startsWith('/**')) return commentText(raw);
  }
  return '';
}

class Reader {
  constructor(private readonly src: Sources) {}

  /** Evaluates a constant expression: literals, arrays, `as const`, names, templates and `X.join(sep)`. */
  constant(e: ts.Expression, sf: ts.SourceFile, depth = 0): Const | undefined {
    if (depth > 20) return undefined;
    e = strip(e);
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
    if (ts.isNumericLiteral(e)) return Number(e.text);
    if (e.kind === ts.SyntaxKind.TrueKeyword) return true;
    if (e.kind === ts.SyntaxKind.FalseKeyword) return false;
    if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.MinusToken) {
      const v = this.constant(e.operand, sf, depth + 1);
      return typeof v === 'number' ? -v : undefined;
    }
    if (ts.isArrayLiteralExpression(e)) {
      const items = e.elements.map((x) => this.constant(x, sf, depth + 1));
      return items.every((x) => x !== undefined) ? (items as Const[]) : undefined;
    }
    if (ts.isTemplateExpression(e)) {
      let s = e.head.text;
      for (const span of e.templateSpans) {
        const v = this.constant(span.expression, sf, depth + 1);
        if (v === undefined) return undefined;
        s += String(v) + span.literal.text;
      }
      return s;
    }
    if (ts.isIdentifier(e)) {
      const r = this.src.resolve(e.text, sf);
      return r && ts.isVariableDeclaration(r.decl) && r.decl.initializer ? this.constant(r.decl.initializer, r.sf, depth + 1) : undefined;
    }
    if (ts.isCallExpression(e) && ts.isPropertyAccessExpression(e.expression) && e.expression.name.text === 'join') {
      const list = this.constant(e.expression.expression, sf, depth + 1);
      const sep = e.arguments[0] === undefined ? ',' : this.constant(e.arguments[0], sf, depth + 1);
      return Array.isArray(list) && typeof sep === 'string' ? list.join(sep) : undefined;
    }
    return undefined;
  }

  /** zod's error parameter: a string, or `{ error: '…' }` (a function or anything else: undefined). */
  errorText(arg: ts.Expression | undefined, sf: ts.SourceFile): string | undefined {
    if (arg === undefined) return undefined;
    arg = strip(arg);
    if (ts.isObjectLiteralExpression(arg)) {
      const p = arg.properties.find((x): x is ts.PropertyAssignment => ts.isPropertyAssignment(x) && x.name.getText(sf) === 'error');
      arg = p?.initializer;
      if (arg === undefined) return undefined;
    }
    const v = this.constant(arg, sf);
    return typeof v === 'string' ? v : undefined;
  }

  /** What a call to a leaf helper (`positiveInt()`, `int('…', ok)`, `flag()`) accepts. */
  helper(call: ts.CallExpression, name: string, sf: ts.SourceFile): Shape {
    const first = call.arguments[0] === undefined ? undefined : this.constant(call.arguments[0], sf);
    if (typeof first === 'string') return { kind: 'leaf', accepts: first };
    const r = this.src.resolve(name, sf);
    let fn: ts.FunctionDeclaration | ts.ArrowFunction | ts.FunctionExpression | undefined;
    if (r && ts.isFunctionDeclaration(r.decl)) fn = r.decl;
    else if (r && ts.isVariableDeclaration(r.decl) && r.decl.initializer) {
      const init = strip(r.decl.initializer);
      if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) fn = init;
    }
    if (r && fn) {
      const init = fn.parameters[0]?.initializer;
      const dflt = init === undefined ? undefined : this.constant(init, r.sf);
      if (typeof dflt === 'string') return { kind: 'leaf', accepts: dflt };
      // No expectation parameter (`pathString()`): the first zod error message in its body.
      let found: string | undefined;
      const visit = (n: ts.Node): void => {
        if (found !== undefined) return;
        if (ts.isCallExpression(n)) for (const a of n.arguments) found ??= this.errorText(a, r.sf);
        if (found === undefined) ts.forEachChild(n, visit);
      };
      if (fn.body) visit(fn.body);
      if (found !== undefined) return { kind: 'leaf', accepts: found };
    }
    return { kind: 'leaf', accepts: name };
  }

  /** Reads a zod schema expression; `prop` collects what its modifiers say about the key holding it. */
  shape(e: ts.Expression, sf: ts.SourceFile, prop?: Pick<Prop, 'defaultText' | 'omittable'>, depth = 0): Shape {
    e = strip(e);
    if (depth > 30) return { kind: 'leaf', accepts: e.getText(sf) };
    if (ts.isIdentifier(e)) {
      const r = this.src.resolve(e.text, sf);
      if (r && ts.isVariableDeclaration(r.decl) && r.decl.initializer) {
        const s = this.shape(r.decl.initializer, r.sf, prop, depth + 1);
        const declDoc = docOf(r.decl);
        if ((s.kind === 'object' || s.kind === 'choice') && declDoc && !s.declDoc) s.declDoc = declDoc;
        return s;
      }
      return { kind: 'leaf', accepts: e.text };
    }
    if (!ts.isCallExpression(e)) return { kind: 'leaf', accepts: e.getText(sf) };
    const callee = strip(e.expression);
    if (ts.isIdentifier(callee)) return this.helper(e, callee.text, sf);
    if (!ts.isPropertyAccessExpression(callee)) return { kind: 'leaf', accepts: e.getText(sf) };
    const method = callee.name.text;
    const target = strip(callee.expression);
    const args = e.arguments;
    if (ts.isIdentifier(target) && target.text === 'z') return this.constructorShape(method, args, sf, depth);
    // A modifier on a schema: read the schema, then note what the modifier says.
    const inner = this.shape(target, sf, prop, depth + 1);
    if ((method === 'default' || method === 'prefault') && prop) {
      prop.omittable = true;
      if (args[0] !== undefined) prop.defaultText = this.render(args[0], sf);
    } else if ((method === 'optional' || method === 'nullish') && prop) {
      prop.omittable = true;
    } else if (inner.kind === 'leaf' && ['refine', 'regex', 'min', 'max', 'length', 'check'].includes(method)) {
      const more = this.errorText(args[args.length - 1], sf);
      if (more !== undefined && more !== inner.accepts && args.length > 0) return { kind: 'leaf', accepts: `${inner.accepts}; ${more}` };
    }
    return inner;
  }

  private constructorShape(method: string, args: ts.NodeArray<ts.Expression>, sf: ts.SourceFile, depth: number): Shape {
    const err = (i: number) => this.errorText(args[i], sf);
    switch (method) {
      case 'strictObject':
      case 'object':
      case 'looseObject': {
        const lit = args[0] === undefined ? undefined : strip(args[0]);
        const props: Prop[] = [];
        if (lit && ts.isObjectLiteralExpression(lit)) {
          for (const p of lit.properties) {
            if (!ts.isPropertyAssignment(p)) continue;
            const key = ts.isIdentifier(p.name) || ts.isStringLiteral(p.name) ? p.name.text : p.name.getText(sf);
            const prop: Prop = { key, doc: docOf(p), omittable: false, shape: { kind: 'leaf', accepts: '' } };
            prop.shape = this.shape(p.initializer, sf, prop, depth + 1);
            props.push(prop);
          }
        }
        return { kind: 'object', props, origin: sf.fileName, declDoc: '' };
      }
      case 'enum': {
        const values = args[0] === undefined ? undefined : this.constant(args[0], sf);
        return { kind: 'leaf', accepts: Array.isArray(values) ? oneOf(values.map(String)) : (err(1) ?? 'an enum') };
      }
      case 'literal': {
        const v = args[0] === undefined ? undefined : this.constant(args[0], sf);
        return { kind: 'leaf', accepts: v === undefined ? 'a literal' : `\`${String(v)}\`` };
      }
      case 'discriminatedUnion':
      case 'union': {
        const list = args.map((a) => strip(a)).find(ts.isArrayLiteralExpression);
        const options = list ? list.elements.map((x) => this.shape(x, sf, undefined, depth + 1)) : [];
        // A union of plain values with its own expectation ("1 (grayscale) or 3 (RGB)") reads best as that.
        const expectation = err(1);
        if (method === 'union' && expectation !== undefined && options.every((o) => o.kind === 'leaf')) return { kind: 'leaf', accepts: expectation };
        if (method === 'union') return { kind: 'union', options };
        const disc = args[0] === undefined ? undefined : this.constant(args[0], sf);
        return { kind: 'choice', discriminator: typeof disc === 'string' ? disc : 'type', variants: options, declDoc: '' };
      }
      case 'array': {
        const item = args[0] === undefined ? undefined : this.shape(args[0], sf, undefined, depth + 1);
        return { kind: 'leaf', accepts: err(1) ?? `a list of ${item ? acceptsOf(item) : 'values'}` };
      }
      case 'tuple': {
        const list = args[0] === undefined ? undefined : strip(args[0]);
        const items = list && ts.isArrayLiteralExpression(list) ? list.elements.map((x) => acceptsOf(this.shape(x, sf, undefined, depth + 1))) : [];
        return { kind: 'leaf', accepts: err(1) ?? `[${items.join(', ')}]` };
      }
      case 'record': {
        const value = args[1] === undefined ? undefined : this.shape(args[1], sf, undefined, depth + 1);
        return { kind: 'leaf', accepts: err(2) ?? `a mapping of names to ${value ? acceptsOf(value) : 'values'}` };
      }
      case 'boolean':
        return { kind: 'leaf', accepts: err(0) ?? 'true or false' };
      default:
        return { kind: 'leaf', accepts: err(0) ?? `a ${method}` };
    }
  }

  /** A default value as a reader writes it in YAML: `auto`, 5000, [0.5], `{ name: random }`. */
  private render(e: ts.Expression, sf: ts.SourceFile): string | undefined {
    e = strip(e);
    if (ts.isObjectLiteralExpression(e) && e.properties.length === 0) return undefined; // every nested key's own default
    const v = this.constant(e, sf);
    const yaml = (x: Const): string => (Array.isArray(x) ? `[${x.map(yaml).join(', ')}]` : String(x));
    if (v !== undefined) return `\`${yaml(v)}\``;
    return `\`${e.getText(sf).replace(/'/g, '').replace(/\s+/g, ' ')}\``;
  }
}

function oneOf(values: string[]): string {
  const v = values.map((x) => `\`${x}\``);
  return v.length === 1 ? v[0] : `one of ${v.join(', ')}`;
}

function acceptsOf(s: Shape): string {
  switch (s.kind) {
    case 'leaf':
      return s.accepts;
    case 'object':
      return 'a mapping (keys below)';
    case 'choice':
      return `a mapping whose \`${s.discriminator}\` picks its kind (below)`;
    case 'union': {
      const parts = s.options.map(acceptsOf);
      return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')}, or ${parts[parts.length - 1]}`;
    }
  }
}

function withDefault(doc: string, defaultText: string | undefined): string {
  if (defaultText === undefined || /\bdefault\b/i.test(doc)) return doc;
  return `${doc}${doc && !/[.!?]$/.test(doc) ? '.' : ''}${doc ? ' ' : ''}Default ${defaultText}.`;
}

/** Rows for an object's keys under `prefix`, depth first; discriminated unions go to `choices`. */
function flatten(prefix: string, s: Shape, rows: KeyRow[], choices: Choice[], undocumented: string[], skipKey?: string): void {
  if (s.kind === 'union') {
    for (const o of s.options) flatten(prefix, o, rows, choices, undocumented);
    return;
  }
  if (s.kind !== 'object') return;
  for (const p of s.props) {
    if (p.key === skipKey) continue;
    const path = prefix ? `${prefix}.${p.key}` : p.key;
    if (!p.doc) undocumented.push(path);
    rows.push({ path, accepts: acceptsOf(p.shape), doc: withDefault(p.doc, p.defaultText) });
    const shape = p.shape;
    if (shape.kind === 'choice') {
      rows.push({
        path: `${path}.${shape.discriminator}`,
        accepts: oneOf(shape.variants.map((v) => variantValue(v, shape.discriminator))),
        doc: 'Picks the kind; the options of each kind are listed below.',
      });
      choiceOf(path, shape, p.doc, choices, undocumented);
    } else {
      flatten(path, p.shape, rows, choices, undocumented);
    }
  }
}

function variantValue(v: Shape, discriminator: string): string {
  const d = v.kind === 'object' ? v.props.find((p) => p.key === discriminator) : undefined;
  return d && d.shape.kind === 'leaf' ? d.shape.accepts.replace(/`/g, '') : '?';
}

function choiceOf(path: string, s: Extract<Shape, { kind: 'choice' }>, doc: string, choices: Choice[], undocumented: string[]): void {
  // Listed before the choices nested in its variants, which the loop below adds.
  const choice: Choice = { path, discriminator: s.discriminator, doc: s.declDoc || doc, variants: [] };
  choices.push(choice);
  for (const v of s.variants) {
    const rows: KeyRow[] = [];
    flatten(path, v, rows, choices, undocumented, s.discriminator);
    const d = v.kind === 'object' ? v.props.find((p) => p.key === s.discriminator) : undefined;
    choice.variants.push({ value: variantValue(v, s.discriminator), doc: d?.doc ?? '', rows });
  }
}

/** Reads the schema under `root` (a checkout: src/config/schema.ts and the files it imports). */
export function readConfigReference(root: string): ConfigReference {
  const src = new Sources();
  const reader = new Reader(src);
  const schemaFile = src.file(join(root, 'src/config/schema.ts'));
  const r = src.resolve('configSchema', schemaFile);
  if (!r || !ts.isVariableDeclaration(r.decl) || !r.decl.initializer) throw new Error(`no configSchema in ${schemaFile.fileName}`);
  const top = reader.shape(r.decl.initializer, r.sf);
  if (top.kind !== 'object') throw new Error('configSchema is not a z.strictObject({...})');
  const undocumented: string[] = [];
  const topLevel: KeyRow[] = [];
  const sections: Section[] = [];
  const required = top.props.filter((p) => !p.omittable).map((p) => p.key);
  for (const p of top.props) {
    if (p.shape.kind !== 'object') {
      // A key at the top level (`name`), or a section that is one value.
      const choices: Choice[] = [];
      flatten('', { kind: 'object', props: [p], origin: '', declDoc: '' }, topLevel, choices, undocumented);
      continue;
    }
    const rows: KeyRow[] = [];
    const choices: Choice[] = [];
    flatten(p.key, p.shape, rows, choices, undocumented);
    const header = p.shape.origin.includes(`${join('src', 'config', 'sections')}`) ? fileHeader(src.file(p.shape.origin)) : '';
    sections.push({ key: p.key, doc: p.doc || header || p.shape.declDoc, required: !p.omittable, rows, choices });
  }
  return { topLevel, sections, required, undocumented };
}

/** Every key path the reference documents (discriminators included), for tests. */
export function documentedKeys(ref: ConfigReference): string[] {
  const out = ref.topLevel.map((r) => r.path);
  for (const s of ref.sections) {
    out.push(s.key, ...s.rows.map((r) => r.path));
    for (const c of s.choices) for (const v of c.variants) out.push(...v.rows.map((r) => r.path));
  }
  return [...new Set(out)];
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

function table(rows: KeyRow[]): string[] {
  if (rows.length === 0) return ['No options.', ''];
  return ['| key | accepts | meaning and default |', '| --- | --- | --- |', ...rows.map((r) => `| \`${r.path}\` | ${cell(r.accepts)} | ${cell(r.doc)} |`), ''];
}

const INTRO = [
  '# Configuration reference',
  '',
  '<!-- Generated from src/config/schema.ts and src/config/sections/*.ts by `npm run docs:config`; edit the',
  "     schema's comments, not this file. test/config-reference.test.ts fails when the two disagree. -->",
  '',
  'A config is a YAML or JSON file. The schema is strict: an unknown key or a bad value is an error naming',
  'the file, the key, the value and what was expected. Relative paths resolve against the folder you run',
  '`autoprune` from. `autoprune config show <config>` prints the resolved config, every default filled,',
  'and its hash. The shipped configs are described in [the README](../README.md#configs).',
  '',
];

/** The reference as Markdown. */
export function renderConfigReference(root: string): string {
  const ref = readConfigReference(root);
  const lines = [...INTRO];
  const required = ref.required.map((k) => `\`${k}\``);
  lines.push(
    `Required: ${required.length > 1 ? `${required.slice(0, -1).join(', ')} and ${required[required.length - 1]}` : required.join('')}; every other key has a default or may be left out.`,
    '',
  );
  lines.push(`Sections: ${['[top level](#top-level)', ...ref.sections.map((s) => `[\`${s.key}\`](#${s.key.toLowerCase()})`)].join(' · ')}`, '');
  lines.push('## Top level', '', ...table(ref.topLevel));
  for (const s of ref.sections) {
    lines.push(`## \`${s.key}\``, '');
    if (s.doc) lines.push(s.doc, '');
    lines.push(s.required ? 'Required.' : 'Optional: every key has a default or may be left out.', '');
    lines.push(...table(s.rows));
    for (const c of s.choices) {
      lines.push(`### \`${c.path}\``, '');
      if (c.doc) lines.push(c.doc, '');
      lines.push(`\`${c.path}.${c.discriminator}\` picks one of these kinds; each takes only its own options.`, '');
      for (const v of c.variants) {
        lines.push(`#### \`${c.discriminator}: ${v.value}\``, '');
        if (v.doc) lines.push(v.doc, '');
        lines.push(...table(v.rows));
      }
    }
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'docs/configuration.md');
const isMain = process.argv[1] != null && resolve(process.argv[1]) === resolve(import.meta.filename);
if (isMain) {
  const text = renderConfigReference(ROOT);
  const ref = readConfigReference(ROOT);
  for (const k of ref.undocumented) process.stderr.write(`config-reference: \`${k}\` has no doc comment (say what it does and its default)\n`);
  if (process.argv.includes('--check')) {
    const current = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${relative(process.cwd(), OUT)} is out of date with src/config: run \`npm run docs:config\`\n`);
      process.exit(1);
    }
    process.stdout.write(`${relative(process.cwd(), OUT)} is up to date\n`);
  } else {
    writeFileSync(OUT, text);
    process.stdout.write(`wrote ${relative(process.cwd(), OUT)} (${documentedKeys(ref).length} keys)\n`);
  }
}
