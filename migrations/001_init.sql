-- The warm tier: the system of record. Thread and turn rows are projections of
-- agent_events, written in the same transaction as the events they follow.

CREATE TABLE threads (
  thread_id   text PRIMARY KEY,
  tenant_id   text NOT NULL,
  status      text NOT NULL DEFAULT 'idle',
  -- The highest persisted seq; the hot tier may be ahead by what is not persisted yet.
  last_seq    bigint NOT NULL DEFAULT 0,
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  -- An archiver's claim on the thread: plain rows, not a held connection, so it works on PGlite too.
  archive_lease_until timestamptz
);
CREATE INDEX threads_tenant_newest ON threads (tenant_id, created_at DESC, thread_id DESC);
CREATE INDEX threads_newest ON threads (created_at DESC, thread_id DESC);
-- Retention and the archiver's idle-thread policy.
CREATE INDEX threads_idle ON threads (updated_at) WHERE status <> 'deleted';

CREATE TABLE turns (
  turn_id          text PRIMARY KEY,
  thread_id        text NOT NULL,
  tenant_id        text NOT NULL,
  status           text NOT NULL,
  input            jsonb NOT NULL DEFAULT '{}',
  output           jsonb,
  error            text NOT NULL DEFAULT '',
  attempt          integer NOT NULL DEFAULT 0,
  agent_id         text NOT NULL DEFAULT '',
  idempotency_key  text NOT NULL DEFAULT '',
  metadata         jsonb NOT NULL DEFAULT '{}',
  submitted_seq    bigint NOT NULL,
  -- The seq of the event that set `status`: a redelivered older event never moves it back.
  status_seq       bigint NOT NULL,
  created_at       timestamptz NOT NULL,
  started_at       timestamptz,
  ended_at         timestamptz,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX turns_thread_order ON turns (thread_id, submitted_seq);
CREATE INDEX turns_open ON turns (status) WHERE status IN ('queued', 'running');

CREATE TABLE agent_events (
  thread_id       text NOT NULL,
  seq             bigint NOT NULL,
  event_id        text NOT NULL,
  turn_id         text NOT NULL DEFAULT '',
  tenant_id       text NOT NULL,
  type            text NOT NULL,
  payload         jsonb NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}',
  schema_version  integer NOT NULL DEFAULT 1,
  level           text NOT NULL DEFAULT 'info',
  created_at      timestamptz NOT NULL,
  PRIMARY KEY (thread_id, seq),
  CONSTRAINT agent_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX agent_events_turn ON agent_events (turn_id, thread_id, seq) WHERE turn_id <> '';
CREATE INDEX agent_events_type_time ON agent_events (type text_pattern_ops, created_at);
CREATE INDEX agent_events_tenant_time ON agent_events (tenant_id, created_at);
-- The archiver's policy scan: events older than the archive age.
CREATE INDEX agent_events_created ON agent_events (created_at);

CREATE TABLE event_archives (
  archive_id   text PRIMARY KEY,
  thread_id    text NOT NULL,
  tenant_id    text NOT NULL,
  from_seq     bigint NOT NULL,
  to_seq       bigint NOT NULL,
  object_key   text NOT NULL,
  event_count  bigint NOT NULL,
  bytes        bigint NOT NULL,
  sha256       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT event_archives_range_key UNIQUE (thread_id, from_seq)
);
CREATE INDEX event_archives_thread_range ON event_archives (thread_id, to_seq);

-- Where an archived event went, so GetEvent and idempotent retries still find
-- it by id after its row left agent_events (a slim row: no payload).
CREATE TABLE archived_event_ids (
  event_id   text PRIMARY KEY,
  thread_id  text NOT NULL,
  seq        bigint NOT NULL
);
CREATE INDEX archived_event_ids_thread ON archived_event_ids (thread_id);
