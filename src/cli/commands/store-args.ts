/**
 * What the study-reading commands (list, show, report, compare, pick, export, worker) share on the
 * command line: the `--store` option; reading the store is src/app/studies.ts.
 */
import { relative } from 'node:path';
import { DEFAULT_STORE } from '../../app/studies.js';

export {
  DEFAULT_STORE,
  lastUpdate,
  loadStudyData,
  openExistingStore,
  requireStudy,
  type StudyData,
  storeExists,
  studyConfig,
  withStore,
} from '../../app/studies.js';

export interface StoreArg {
  store: string;
}

export const storeOption = [
  'store',
  { type: 'string', default: DEFAULT_STORE, describe: 'Store of the studies: SQLite file or postgres:// URL (run.store of the config)' },
] as const;

/** A path for messages: relative to the working directory when inside it. */
export function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}
