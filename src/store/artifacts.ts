/**
 * Artifacts of a study (adapted weights of `adapt` trials, finalists' models): files addressed by a
 * key within the study. SQLite and memory keep them in the study's artifact folder (FolderArtifacts);
 * PostgreSQL keeps them in the database, so a worker on another host reads a parent's weights
 * without a shared mount. Evaluators read and write plain folders; `pullFolder` / `pushFolder` copy
 * one folder between the store and this process's artifact folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { checkArtifactKey } from './shared.js';
import type { ArtifactInfo, Store } from './types.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const isMissing = (e: unknown): boolean => (e as { code?: string })?.code === 'ENOENT' || (e as { code?: string })?.code === 'ENOTDIR';

/** Files under `dir` as relative keys with `/` separators (none when `dir` does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.tmp-'))
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** The artifacts of SQLite and memory stores: files in the study's artifact folder, one per key. */
export class FolderArtifacts {
  constructor(private readonly dirOf: (study: string) => string) {}

  async put(study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo> {
    checkArtifactKey(key);
    await writeAtomic(join(this.dirOf(study), key), bytes);
    return { key, sha256: sha256Hex(bytes), size: bytes.byteLength };
  }

  async get(study: string, key: string): Promise<Uint8Array | null> {
    checkArtifactKey(key);
    try {
      return new Uint8Array(await readFile(join(this.dirOf(study), key)));
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  }

  async list(study: string, prefix = ''): Promise<ArtifactInfo[]> {
    checkArtifactKey(prefix, true);
    const root = this.dirOf(study);
    const out: ArtifactInfo[] = [];
    for (const key of await filesUnder(root)) {
      if (!key.startsWith(prefix)) continue;
      const bytes = await this.get(study, key);
      if (bytes !== null) out.push({ key, sha256: sha256Hex(bytes), size: bytes.byteLength });
    }
    return out;
  }
}

/**
 * The key of `path` in the study's artifacts: its path below `store.artifactDir(study)`, or null
 * when it lies elsewhere (then it is not an artifact of the study).
 */
export function artifactKeyOf(store: Pick<Store, 'artifactDir'>, study: string, path: string): string | null {
  const rel = relative(resolve(store.artifactDir(study)), resolve(path));
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return null;
  return rel.split(sep).join('/');
}

/** Puts every file of folder `dir` under `key/`; returns how many. */
export async function pushFolder(store: Store, study: string, key: string, dir: string): Promise<number> {
  const files = await filesUnder(dir);
  for (const f of files) await store.putArtifact(study, `${key}/${f}`, new Uint8Array(await readFile(join(dir, f))));
  return files.length;
}

/**
 * Makes folder `dir` hold the study's files under `key/`: fetches those missing or different here
 * (by sha256); files already equal are left alone. NOT_FOUND-style error when the store has none.
 */
export async function pullFolder(store: Store, study: string, key: string, dir: string): Promise<number> {
  const want = await store.listArtifacts(study, `${key}/`);
  if (want.length === 0) {
    throw new AutopruneError(
      ErrorCodes.STORE_ERROR,
      `Study ${quote(study)} has no artifact ${quote(key)} in the store (the trial that writes it has not finished, or its store lost it)`,
    );
  }
  let fetched = 0;
  for (const a of want) {
    const path = join(dir, a.key.slice(key.length + 1));
    const here = await readFile(path).catch((e: unknown) => (isMissing(e) ? null : Promise.reject(e)));
    if (here !== null && sha256Hex(here) === a.sha256) continue;
    const bytes = await store.getArtifact(study, a.key);
    if (bytes === null) throw new AutopruneError(ErrorCodes.STORE_ERROR, `Artifact ${quote(a.key)} of study ${quote(study)} vanished while being read`);
    if (sha256Hex(bytes) !== a.sha256)
      throw new AutopruneError(ErrorCodes.STORE_ERROR, `Artifact ${quote(a.key)} of study ${quote(study)} does not match its sha256 ${a.sha256}`);
    await writeAtomic(path, bytes);
    fetched++;
  }
  return fetched;
}
