/**
 * Numbered schema migrations of the SQLite store. Each step runs once, in order, inside one
 * write transaction, and is recorded in `schema_version` (one row per applied version). Append new
 * steps; never edit a released one. Idea borrowed from Optuna's RDB storage (alembic versions +
 * a version table), done here as plain SQL steps.
 */
import type Database from 'better-sqlite3';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'studies, trials, finals, snapshots',
    sql: `
      CREATE TABLE studies (
        id                  INTEGER PRIMARY KEY,
        name                TEXT NOT NULL UNIQUE,
        config              TEXT NOT NULL,            -- JSON of the resolved config
        config_hash         TEXT NOT NULL,
        space               TEXT NOT NULL,            -- JSON SearchSpace
        base_macs           REAL NOT NULL,
        base_params         REAL NOT NULL,
        base_proxy_accuracy REAL,
        base_test_accuracy  REAL,
        state               TEXT NOT NULL CHECK (state IN ('running', 'stopped', 'complete')),
        created_at          TEXT NOT NULL,            -- ISO 8601
        updated_at          TEXT NOT NULL
      );
      CREATE TABLE trials (
        id             INTEGER PRIMARY KEY,
        study_id       INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
        number         INTEGER NOT NULL CHECK (number >= 0),
        state          TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'failed')),
        candidate      TEXT NOT NULL,                 -- JSON Candidate
        key            TEXT NOT NULL,
        macs           REAL NOT NULL,
        params         REAL NOT NULL,
        controller     TEXT NOT NULL,
        meta           TEXT,                          -- JSON, NULL when the controller gave none
        proxy_accuracy REAL,
        final_accuracy REAL,
        latency_ms     REAL,
        timings        TEXT,                          -- JSON { phase: seconds }
        error          TEXT,
        worker         TEXT,
        created_at     TEXT NOT NULL,
        started_at     TEXT,
        finished_at    TEXT,
        UNIQUE (study_id, number)
      );
      CREATE INDEX trials_study_key ON trials (study_id, key);
      CREATE INDEX trials_study_state ON trials (study_id, state);
      CREATE TABLE finals (
        id             INTEGER PRIMARY KEY,
        study_id       INTEGER NOT NULL,
        trial          INTEGER NOT NULL,
        final_accuracy REAL NOT NULL,
        latency_ms     REAL,
        epochs         INTEGER NOT NULL,
        model_path     TEXT,
        seconds        REAL NOT NULL,
        created_at     TEXT NOT NULL,
        UNIQUE (study_id, trial),
        FOREIGN KEY (study_id, trial) REFERENCES trials (study_id, number) ON DELETE CASCADE
      );
      CREATE TABLE snapshots (
        id         INTEGER PRIMARY KEY,
        study_id   INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
        told       INTEGER NOT NULL,
        state      TEXT NOT NULL,                     -- JSON controller state
        created_at TEXT NOT NULL
      );
      CREATE INDEX snapshots_study ON snapshots (study_id, id);
    `,
  },
  {
    version: 2,
    description: 'finished trials are immutable, also for writers that bypass the Store',
    sql: `
      CREATE TRIGGER trials_finished_immutable BEFORE UPDATE ON trials
      WHEN OLD.state IN ('complete', 'failed')
      BEGIN
        SELECT RAISE(ABORT, 'TRIAL_IMMUTABLE: a complete or failed trial cannot be updated');
      END;
    `,
  },
  {
    version: 3,
    description: 'the store is the queue: trial stage, parent, attempts and lease; one driver lease per study',
    sql: `
      ALTER TABLE trials ADD COLUMN stage TEXT NOT NULL DEFAULT 'proxy' CHECK (stage IN ('proxy', 'adapt', 'finetune'));
      ALTER TABLE trials ADD COLUMN parent INTEGER;                        -- trial number whose weights it starts from
      ALTER TABLE trials ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;   -- claims so far
      ALTER TABLE trials ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0; -- fencing token, +1 per claim
      ALTER TABLE trials ADD COLUMN lease_expires_ms INTEGER;              -- store clock, ms since epoch
      CREATE INDEX trials_queue ON trials (study_id, state, number);
      CREATE TABLE drivers (
        study_id   INTEGER PRIMARY KEY REFERENCES studies (id) ON DELETE CASCADE,
        owner      TEXT NOT NULL,
        token      INTEGER NOT NULL,                   -- +1 per acquisition, never reused
        expires_ms INTEGER NOT NULL                    -- 0 once released
      );
    `,
  },
  {
    version: 4,
    description: 'hashes of the base model and dataset a study was created with (a worker checks them)',
    sql: `
      ALTER TABLE studies ADD COLUMN base_hash TEXT; -- sha256 hex; NULL for studies created before
      ALTER TABLE studies ADD COLUMN data_hash TEXT;
    `,
  },
  {
    version: 5,
    description: 'the host and device that measured a latency (latencies of different machines do not compare)',
    sql: `
      ALTER TABLE trials ADD COLUMN latency_host TEXT;
      ALTER TABLE trials ADD COLUMN latency_device TEXT; -- cpu:<model name> or cuda:<n>
      ALTER TABLE finals ADD COLUMN latency_host TEXT;
      ALTER TABLE finals ADD COLUMN latency_device TEXT;
    `,
  },
  {
    version: 6,
    description: 'the engine that fine-tuned a finalist (libtorch and tfjs do not train to the same weights)',
    sql: `ALTER TABLE finals ADD COLUMN train_engine TEXT;`,
  },
  {
    version: 7,
    description: 'per-layer latency tables, shared by every study and worker of a host (src/latency/)',
    sql: `
      CREATE TABLE latency_entries (
        engine         TEXT NOT NULL,              -- onnxruntime, onnxruntime-cuda
        engine_version TEXT NOT NULL,              -- onnxruntime-node's version
        host           TEXT NOT NULL,              -- <hostname>/<cpu model name>
        threads        INTEGER NOT NULL,           -- intra-op threads
        batch          INTEGER NOT NULL,           -- images per call
        op             TEXT NOT NULL CHECK (op IN ('conv', 'dense')),
        cin            INTEGER NOT NULL,
        cout           INTEGER NOT NULL,
        h              INTEGER NOT NULL,           -- input feature map
        w              INTEGER NOT NULL,
        kh             INTEGER NOT NULL,
        kw             INTEGER NOT NULL,
        sh             INTEGER NOT NULL,           -- stride
        sw             INTEGER NOT NULL,
        pad            TEXT NOT NULL CHECK (pad IN ('same', 'valid')),
        conv_groups    INTEGER NOT NULL,
        ms             REAL             NOT NULL,           -- per call of a batch of images, call overhead excluded
        measured_at    TEXT NOT NULL,              -- ISO 8601
        PRIMARY KEY (engine, engine_version, host, threads, batch, op, cin, cout, h, w, kh, kw, sh, sw, pad, conv_groups)
      );
    `,
  },
  {
    version: 8,
    description: 'finish sequence: 1, 2, ... per study in the order trials finished (commit order), from a counter on the study row',
    // Trials finished before it are numbered by (finished_at, number), the order readers used until
    // then. The trigger on finished trials is lifted for that one backfill and put back as it was.
    sql: `
      ALTER TABLE studies ADD COLUMN finish_seq INTEGER NOT NULL DEFAULT 0; -- the last finish_seq given in the study (0: none)
      ALTER TABLE trials ADD COLUMN finish_seq INTEGER;                     -- NULL until the trial finishes
      DROP TRIGGER trials_finished_immutable;
      UPDATE trials SET finish_seq = r.seq
        FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY study_id ORDER BY finished_at NULLS FIRST, number) AS seq
              FROM trials WHERE state IN ('complete', 'failed')) AS r
        WHERE trials.id = r.id;
      CREATE TRIGGER trials_finished_immutable BEFORE UPDATE ON trials
      WHEN OLD.state IN ('complete', 'failed')
      BEGIN
        SELECT RAISE(ABORT, 'TRIAL_IMMUTABLE: a complete or failed trial cannot be updated');
      END;
      UPDATE studies SET finish_seq = (SELECT COALESCE(MAX(t.finish_seq), 0) FROM trials t WHERE t.study_id = studies.id);
      CREATE UNIQUE INDEX trials_finish_seq ON trials (study_id, finish_seq);
    `,
  },
  {
    version: 9,
    description: 'finals are trials: each row of the finals table becomes a complete last-rung trial of its candidate, and the table goes',
    // The trial continues its origin (parent, meta.origin) as a one-rung fine-tune of `epochs`
    // epochs whose model stays where the driver saved it (meta.modelPath); numbered after the
    // study's trials and finished after them, in the order the finals were saved. The key is
    // src/study/lineage.ts trialKey's: `finetune:<origin>:<channels>`, the channels being the part
    // of the origin's key after its last `:`.
    sql: `
      INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, meta, proxy_accuracy, final_accuracy,
                          latency_ms, latency_host, latency_device, timings, created_at, started_at, finished_at, stage, parent, attempts, finish_seq)
      SELECT f.study_id,
             (SELECT MAX(t.number) FROM trials t WHERE t.study_id = f.study_id) + ROW_NUMBER() OVER (PARTITION BY f.study_id ORDER BY f.created_at, f.trial),
             'complete', o.candidate,
             'finetune:' || o.number || ':' || substr(o.key, length(rtrim(o.key, replace(o.key, ':', ''))) + 1),
             o.macs, o.params, o.controller,
             json_object('rung', 1, 'origin', f.trial, 'target', NULL, 'weights', NULL, 'finetune', json_object('epochs', f.epochs),
                         'last', json('true'), 'modelPath', f.model_path),
             NULL, f.final_accuracy, f.latency_ms, f.latency_host, f.latency_device,
             CASE WHEN f.train_engine IS NULL THEN json_object('total', f.seconds)
                  ELSE json_object('total', f.seconds, 'train@' || f.train_engine, f.seconds) END,
             f.created_at, f.created_at, f.created_at, 'finetune', f.trial, 1,
             (SELECT s.finish_seq FROM studies s WHERE s.id = f.study_id) + ROW_NUMBER() OVER (PARTITION BY f.study_id ORDER BY f.created_at, f.trial)
        FROM finals f JOIN trials o ON o.study_id = f.study_id AND o.number = f.trial;
      UPDATE studies SET finish_seq = (SELECT COALESCE(MAX(t.finish_seq), 0) FROM trials t WHERE t.study_id = studies.id);
      DROP TABLE finals;
    `,
  },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1].version;

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS schema_version (
  version    INTEGER PRIMARY KEY,
  applied_at TEXT NOT NULL
)`;

/** Version of an open database: 0 for an empty one (no `schema_version` table). */
export function schemaVersion(db: Database.Database): number {
  const t = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  if (t === undefined) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Bring `db` up to `target` (default: the newest). Refuses a database newer than this code, since
 * writing to it could break the invariants of a newer schema. `label` names the file in messages.
 */
export function migrate(
  db: Database.Database,
  label: string,
  target: number = SCHEMA_VERSION,
  migrations: readonly Migration[] = MIGRATIONS,
): { from: number; to: number } {
  // IMMEDIATE: two processes opening the same new file at once apply each step exactly once.
  return db
    .transaction(() => {
      db.exec(VERSION_TABLE);
      const from = schemaVersion(db);
      const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
      if (from > known) {
        throw new AutopruneError(
          ErrorCodes.STORE_ERROR,
          `Database ${quote(label)} has schema version ${from}, newer than the ${known} this autoprune knows; upgrade autoprune`,
        );
      }
      const record = db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)');
      for (const m of migrations) {
        if (m.version <= from || m.version > target) continue;
        db.exec(m.sql);
        record.run(m.version, new Date().toISOString());
      }
      return { from, to: Math.max(from, Math.min(target, known)) };
    })
    .immediate();
}
