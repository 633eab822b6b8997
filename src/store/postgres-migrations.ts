/**
 * Numbered schema migrations of the PostgreSQL store: the same tables as the SQLite store
 * (migrations.ts), in PostgreSQL's types, plus `studies.next_trial` (a trial counter of version
 * 1 that the store no longer reads: numbers are MAX + 1 under the study row lock). Each step runs once, in
 * order, in one transaction that holds an advisory lock, so several hosts opening a new database at
 * once apply it exactly once. Append new steps; never edit a released one.
 */
import type { PoolClient } from 'pg';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { Migration } from './migrations.js';

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'studies (with a trial counter), trials (with stage, lineage and lease), finals, snapshots, drivers; finished trials immutable',
    sql: `
      CREATE TABLE studies (
        id                  INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name                TEXT NOT NULL UNIQUE,
        config              TEXT NOT NULL,            -- JSON of the resolved config, as text: exact round trip
        config_hash         TEXT NOT NULL,
        space               TEXT NOT NULL,            -- JSON SearchSpace
        base_macs           DOUBLE PRECISION NOT NULL,
        base_params         DOUBLE PRECISION NOT NULL,
        base_proxy_accuracy DOUBLE PRECISION,
        base_test_accuracy  DOUBLE PRECISION,
        state               TEXT NOT NULL CHECK (state IN ('running', 'stopped', 'complete')),
        next_trial          INTEGER NOT NULL DEFAULT 0, -- the next trial number; bumped in the inserting transaction
        created_at          TEXT NOT NULL,            -- ISO 8601
        updated_at          TEXT NOT NULL
      );
      CREATE TABLE trials (
        id               INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        study_id         INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
        number           INTEGER NOT NULL CHECK (number >= 0),
        state            TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'failed')),
        candidate        TEXT NOT NULL,               -- JSON Candidate
        key              TEXT NOT NULL,
        macs             DOUBLE PRECISION NOT NULL,
        params           DOUBLE PRECISION NOT NULL,
        controller       TEXT NOT NULL,
        meta             TEXT,                        -- JSON, NULL when the controller gave none
        proxy_accuracy   DOUBLE PRECISION,
        final_accuracy   DOUBLE PRECISION,
        latency_ms       DOUBLE PRECISION,
        timings          TEXT,                        -- JSON { phase: seconds }
        error            TEXT,
        worker           TEXT,
        created_at       TEXT NOT NULL,
        started_at       TEXT,
        finished_at      TEXT,
        stage            TEXT NOT NULL DEFAULT 'proxy' CHECK (stage IN ('proxy', 'adapt', 'finetune')),
        parent           INTEGER,                     -- trial number whose weights it starts from
        attempts         INTEGER NOT NULL DEFAULT 0,  -- claims so far
        lease_token      INTEGER NOT NULL DEFAULT 0,  -- fencing token, +1 per claim
        lease_expires_ms BIGINT,                      -- store clock, ms since epoch
        UNIQUE (study_id, number)
      );
      CREATE INDEX trials_study_key ON trials (study_id, key);
      CREATE INDEX trials_queue ON trials (study_id, state, number);
      CREATE TABLE finals (
        id             INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        study_id       INTEGER NOT NULL,
        trial          INTEGER NOT NULL,
        final_accuracy DOUBLE PRECISION NOT NULL,
        latency_ms     DOUBLE PRECISION,
        epochs         INTEGER NOT NULL,
        model_path     TEXT,
        seconds        DOUBLE PRECISION NOT NULL,
        created_at     TEXT NOT NULL,
        UNIQUE (study_id, trial),
        FOREIGN KEY (study_id, trial) REFERENCES trials (study_id, number) ON DELETE CASCADE
      );
      CREATE TABLE snapshots (
        id         INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        study_id   INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
        told       INTEGER NOT NULL,
        state      TEXT NOT NULL,                     -- JSON controller state
        created_at TEXT NOT NULL
      );
      CREATE INDEX snapshots_study ON snapshots (study_id, id);
      CREATE TABLE drivers (
        study_id   INTEGER PRIMARY KEY REFERENCES studies (id) ON DELETE CASCADE,
        owner      TEXT NOT NULL,
        token      INTEGER NOT NULL,                  -- +1 per acquisition, never reused
        expires_ms BIGINT NOT NULL                    -- 0 once released
      );
      CREATE FUNCTION trials_finished_immutable() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF OLD.state IN ('complete', 'failed') THEN
          RAISE EXCEPTION 'TRIAL_IMMUTABLE: a complete or failed trial cannot be updated';
        END IF;
        RETURN NEW;
      END
      $fn$;
      CREATE TRIGGER trials_finished_immutable BEFORE UPDATE ON trials
        FOR EACH ROW EXECUTE FUNCTION trials_finished_immutable();
    `,
  },
  {
    version: 2,
    description: 'hashes of the base model and dataset a study was created with (a worker checks them)',
    sql: `
      ALTER TABLE studies ADD COLUMN base_hash TEXT; -- sha256 hex; NULL for studies created before
      ALTER TABLE studies ADD COLUMN data_hash TEXT;
    `,
  },
  {
    version: 3,
    description: "artifacts in the database, so workers on other hosts read a parent's weights without a shared mount",
    sql: `
      CREATE TABLE artifacts (
        study_id   INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
        key        TEXT NOT NULL,                     -- relative path, e.g. trials/3/model/weights.bin
        sha256     TEXT NOT NULL,                     -- hex, of bytes
        size       BIGINT NOT NULL,
        bytes      BYTEA NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (study_id, key)
      );
    `,
  },
  {
    version: 4,
    description: 'the host and device that measured a latency (latencies of different machines do not compare)',
    sql: `
      ALTER TABLE trials ADD COLUMN latency_host TEXT;
      ALTER TABLE trials ADD COLUMN latency_device TEXT; -- cpu:<model name> or cuda:<n>
      ALTER TABLE finals ADD COLUMN latency_host TEXT;
      ALTER TABLE finals ADD COLUMN latency_device TEXT;
    `,
  },
  {
    version: 5,
    description: 'the engine that fine-tuned a finalist (libtorch and tfjs do not train to the same weights)',
    sql: `ALTER TABLE finals ADD COLUMN train_engine TEXT;`,
  },
  {
    version: 6,
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
        ms             DOUBLE PRECISION NOT NULL,           -- per call of a batch of images, call overhead excluded
        measured_at    TEXT NOT NULL,              -- ISO 8601
        PRIMARY KEY (engine, engine_version, host, threads, batch, op, cin, cout, h, w, kh, kw, sh, sw, pad, conv_groups)
      );
    `,
  },
  {
    version: 7,
    description: 'finish sequence: 1, 2, ... per study in the order trials finished (commit order), from a counter on the study row',
    // As SQLite's version 8: trials finished before it are numbered by (finished_at, number), with
    // the trigger on finished trials disabled for that one backfill.
    sql: `
      ALTER TABLE studies ADD COLUMN finish_seq INTEGER NOT NULL DEFAULT 0; -- the last finish_seq given in the study (0: none)
      ALTER TABLE trials ADD COLUMN finish_seq INTEGER;                     -- NULL until the trial finishes
      ALTER TABLE trials DISABLE TRIGGER trials_finished_immutable;
      UPDATE trials SET finish_seq = r.seq
        FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY study_id ORDER BY finished_at NULLS FIRST, number) AS seq
              FROM trials WHERE state IN ('complete', 'failed')) AS r
        WHERE trials.id = r.id;
      ALTER TABLE trials ENABLE TRIGGER trials_finished_immutable;
      UPDATE studies SET finish_seq = (SELECT COALESCE(MAX(t.finish_seq), 0) FROM trials t WHERE t.study_id = studies.id);
      CREATE UNIQUE INDEX trials_finish_seq ON trials (study_id, finish_seq);
    `,
  },
  {
    version: 8,
    description: 'finals are trials: each row of the finals table becomes a complete last-rung trial of its candidate, and the table goes',
    // As SQLite's version 9 (see there).
    sql: `
      INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, meta, proxy_accuracy, final_accuracy,
                          latency_ms, latency_host, latency_device, timings, created_at, started_at, finished_at, stage, parent, attempts, finish_seq)
      SELECT f.study_id,
             (SELECT MAX(t.number) FROM trials t WHERE t.study_id = f.study_id) + ROW_NUMBER() OVER (PARTITION BY f.study_id ORDER BY f.created_at, f.trial),
             'complete', o.candidate,
             'finetune:' || o.number || ':' || regexp_replace(o.key, '^.*:', ''),
             o.macs, o.params, o.controller,
             json_build_object('rung', 1, 'origin', f.trial, 'target', NULL, 'weights', NULL, 'finetune', json_build_object('epochs', f.epochs),
                               'last', true, 'modelPath', f.model_path)::text,
             NULL, f.final_accuracy, f.latency_ms, f.latency_host, f.latency_device,
             CASE WHEN f.train_engine IS NULL THEN json_build_object('total', f.seconds)::text
                  ELSE json_build_object('total', f.seconds, 'train@' || f.train_engine, f.seconds)::text END,
             f.created_at, f.created_at, f.created_at, 'finetune', f.trial, 1,
             (SELECT s.finish_seq FROM studies s WHERE s.id = f.study_id) + ROW_NUMBER() OVER (PARTITION BY f.study_id ORDER BY f.created_at, f.trial)
        FROM finals f JOIN trials o ON o.study_id = f.study_id AND o.number = f.trial;
      UPDATE studies SET finish_seq = (SELECT COALESCE(MAX(t.finish_seq), 0) FROM trials t WHERE t.study_id = studies.id);
      DROP TABLE finals;
    `,
  },
];

export const PG_SCHEMA_VERSION: number = PG_MIGRATIONS[PG_MIGRATIONS.length - 1].version;

/** Any constant: the advisory lock that serialises migrations across hosts. */
const MIGRATION_LOCK = 0x61757470; // 'autp'

/** Version of the connected database: 0 when it has no `schema_version` table. */
export async function pgSchemaVersion(c: PoolClient): Promise<number> {
  const t = await c.query<{ t: string | null }>("SELECT to_regclass('schema_version')::text AS t");
  if (t.rows[0].t === null) return 0;
  const r = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
  return r.rows[0].v ?? 0;
}

/** Bring the database up to `target` (default: the newest); refuses one newer than this code. */
export async function pgMigrate(
  c: PoolClient,
  label: string,
  target: number = PG_SCHEMA_VERSION,
  migrations: readonly Migration[] = PG_MIGRATIONS,
): Promise<{ from: number; to: number }> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const from = await pgSchemaVersion(c);
    const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
    if (from > known) {
      throw new AutopruneError(
        ErrorCodes.STORE_ERROR,
        `Database ${quote(label)} has schema version ${from}, newer than the ${known} this autoprune knows; upgrade autoprune`,
      );
    }
    for (const m of migrations) {
      if (m.version <= from || m.version > target) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)', [m.version, new Date().toISOString()]);
    }
    await c.query('COMMIT');
    return { from, to: Math.max(from, Math.min(target, known)) };
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
