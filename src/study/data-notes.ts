/**
 * Facts about a study's data that its hashes do not say: how many unreadable image files
 * `data.onCorrupt: skip` left out. Kept as a small JSON artifact of the study (every store backend
 * has artifacts; the study row has no free-form field), so the record needs no schema change and
 * the data hash (src/data/fingerprint.ts, over the decoded splits) stays what it was.
 */
import type { Store } from '../store/types.js';

/** The artifact key of the notes within the study. */
export const DATA_NOTES_KEY = 'data/notes.json';

export interface DataNotes {
  /** Image files left out because they could not be decoded (train and test folders together). */
  readonly skippedFiles: number;
  readonly onCorrupt: 'skip';
}

/** Stores the notes (idempotent); nothing is written when nothing was skipped. */
export async function recordDataNotes(store: Store, study: string, notes: DataNotes | null): Promise<void> {
  if (notes === null || notes.skippedFiles === 0) return;
  await store.putArtifact(study, DATA_NOTES_KEY, new TextEncoder().encode(`${JSON.stringify(notes)}\n`));
}

/** The study's notes; null when it has none (nothing skipped, or a study recorded before notes existed). */
export async function readDataNotes(store: Store, study: string): Promise<DataNotes | null> {
  const bytes = await store.getArtifact(study, DATA_NOTES_KEY);
  if (bytes === null) return null;
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Partial<DataNotes>;
    return typeof v.skippedFiles === 'number' && Number.isInteger(v.skippedFiles) && v.skippedFiles > 0
      ? { skippedFiles: v.skippedFiles, onCorrupt: 'skip' }
      : null;
  } catch {
    return null; // an unreadable note is not worth failing a report over
  }
}

/** The line reports and `show` print, e.g. `data: 3 unreadable file(s) skipped (onCorrupt: skip)`. */
export function dataNotesLine(notes: DataNotes): string {
  return `data: ${notes.skippedFiles} unreadable file(s) skipped (onCorrupt: ${notes.onCorrupt})`;
}
