-- Client event ids are unique per tenant, not across tenants: an id another
-- tenant used is neither refused (ALREADY_EXISTS naming its thread) nor found.
-- Rows already there satisfy the narrower rule (their ids were unique
-- everywhere), so the new constraints hold on a database in use.

-- The index is not unique on purpose: the hot tier refuses a reused id within
-- a partition, atomically, but two threads of one tenant in different
-- partitions can take the same new id at the same moment, and both appends
-- are then acknowledged. The warm tier must keep both events (a unique index
-- would make the persister drop one, a hole in its thread); lookups by id take
-- the first. Built inside the migration's transaction: on a large table,
-- persisting waits until it is built.
CREATE INDEX agent_events_tenant_event_id ON agent_events (tenant_id, event_id);
ALTER TABLE agent_events DROP CONSTRAINT agent_events_event_id_key;

-- Archived ids keep their tenant too, taken from their thread's row.
ALTER TABLE archived_event_ids ADD COLUMN tenant_id text;
UPDATE archived_event_ids a SET tenant_id = t.tenant_id FROM threads t WHERE t.thread_id = a.thread_id;
-- An id whose thread row is gone pointed at nothing any more (erasure removes both together).
DELETE FROM archived_event_ids WHERE tenant_id IS NULL;
ALTER TABLE archived_event_ids ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE archived_event_ids DROP CONSTRAINT archived_event_ids_pkey;
ALTER TABLE archived_event_ids ADD PRIMARY KEY (tenant_id, event_id);
