/**
 * The in-memory store (`:memory:`): SQLite's in-memory database behind the same implementation as
 * a file store, so tests and throw-away runs exercise the product's SQL and rules, not a copy of
 * them. One connection only (its `location` is null: nothing else can open it); its artifacts live
 * in a temporary folder of its own; everything is gone with the process.
 */
import { SqliteStore } from './sqlite.js';
import type { StoreOptions } from './types.js';

export class MemoryStore extends SqliteStore {
  constructor(options: StoreOptions = {}) {
    super(':memory:', options);
  }
}
