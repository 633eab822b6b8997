/**
 * The decoded pixels of an image-folder dataset in one file, so a second load reads bytes instead
 * of decoding every image again. The file's name is a sha256 of everything the pixels depend on
 * (each file's path, size and mtime, the class names and the decode settings), so a changed,
 * added or removed file, or other settings, simply miss. Layout (little-endian):
 *
 *   "APXPIX01" | u32 header length | header JSON (utf8) | zero padding to 8 bytes |
 *   train pixels (uint8 HWC) | train labels | test pixels | test labels
 *
 * The header repeats the key, so a file renamed by hand is not trusted.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageShape } from './types.js';

const MAGIC = 'APXPIX01';

export interface CachedSplit {
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

export interface CacheHeader {
  readonly key: string;
  readonly shape: ImageShape;
  readonly classes: readonly string[];
  readonly train: { readonly count: number };
  readonly test: { readonly count: number } | null;
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
}

export interface CacheEntry {
  readonly header: CacheHeader;
  readonly train: CachedSplit;
  readonly test: CachedSplit | null;
}

const sha256 = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex');

/**
 * `<family>-<sha256>`: `family` (16 hex digits) names the dataset and settings (its folders,
 * channels, size...), the rest hashes everything the pixels depend on. Entries of one family are
 * the same dataset at other times: writing a new one deletes them, so editing a folder does not
 * pile up stale copies.
 */
export function cacheKey(family: unknown, content: unknown): string {
  return `${sha256(family).slice(0, 16)}-${sha256({ family, content })}`;
}

export const cacheFile = (dir: string, key: string): string => join(dir, `${key}.pixels`);

const pad8 = (n: number): number => (8 - (n % 8)) % 8;

/** The entry for `key` in `dir`, or null when absent, truncated or not this key's. */
export async function readCache(dir: string, key: string): Promise<CacheEntry | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(cacheFile(dir, key));
  } catch {
    return null;
  }
  if (bytes.length < 12 || bytes.toString('latin1', 0, 8) !== MAGIC) return null;
  const headerLen = bytes.readUInt32LE(8);
  if (12 + headerLen > bytes.length) return null;
  let header: CacheHeader;
  try {
    header = JSON.parse(bytes.toString('utf8', 12, 12 + headerLen)) as CacheHeader;
  } catch {
    return null;
  }
  if (header.key !== key) return null;
  const size = header.shape[0] * header.shape[1] * header.shape[2];
  let at = 12 + headerLen + pad8(12 + headerLen);
  const take = (count: number): CachedSplit => {
    const pixels = new Uint8Array(bytes.buffer, bytes.byteOffset + at, count * size);
    const labels = new Uint8Array(bytes.buffer, bytes.byteOffset + at + count * size, count);
    at += count * (size + 1);
    return { pixels, labels, count };
  };
  const expected = at + (header.train.count + (header.test?.count ?? 0)) * (size + 1);
  if (bytes.length !== expected) return null;
  const train = take(header.train.count);
  const test = header.test ? take(header.test.count) : null;
  return { header, train, test };
}

/**
 * Write an entry atomically (temporary file + rename). Returns null, or why it could not be
 * written: a cache that cannot be written (read-only folder, full disk) slows the next start, it
 * does not fail this one.
 */
export async function writeCache(dir: string, entry: CacheEntry): Promise<string | null> {
  const header = Buffer.from(JSON.stringify(entry.header), 'utf8');
  const head = Buffer.alloc(12 + header.length + pad8(12 + header.length));
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(header.length, 8);
  header.copy(head, 12);
  const parts: Uint8Array[] = [head, entry.train.pixels, entry.train.labels];
  if (entry.test) parts.push(entry.test.pixels, entry.test.labels);
  const file = cacheFile(dir, entry.header.key);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, parts);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    return (e as Error).message;
  }
  const family = entry.header.key.split('-')[0];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(`${family}-`) && name.endsWith('.pixels') && join(dir, name) !== file) await rm(join(dir, name), { force: true }).catch(() => {});
  }
  return null;
}
