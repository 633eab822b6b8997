import { access, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';

const gunzipAsync = promisify(gunzip);

/** Read a file, gunzipping it when its content starts with the gzip magic (not by its name). */
export async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const raw = await readFile(path);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      const out = await gunzipAsync(raw);
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    } catch (e) {
      throw new AutopruneError(
        ErrorCodes.DATASET_INVALID,
        `Dataset file ${quote(path)} is not a valid gzip stream (${(e as Error).message}); expected a complete .gz file, re-download it`,
        { cause: e },
      );
    }
  }
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** `path` if it exists, else `path.gz` if that exists, else undefined. */
export async function findPlainOrGz(pathWithoutGz: string): Promise<string | undefined> {
  if (await exists(pathWithoutGz)) return pathWithoutGz;
  if (await exists(`${pathWithoutGz}.gz`)) return `${pathWithoutGz}.gz`;
  return undefined;
}
