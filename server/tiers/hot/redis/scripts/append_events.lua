-- Atomically: (optionally) create a thread or register a turn, dedupe client
-- event ids, check expected_last_seq, assign the next seqs, write the thread
-- stream and the partition log. Every key shares one {partition} hash tag.
--
-- KEYS: 1 meta, 2 stream, 3 partition log, 4 event index, 5 turns,
--       6 turn index, 7 idempotency key, 8 turn state, 9 turn queue,
--       10 ready threads (partition)
-- ARGV: 1 thread_id, 2 tenant, 3 expected_last_seq ('' = none),
--       4 create metadata JSON ('' = thread must exist),
--       5 turn id ('' = no turn), 6 turn JSON without submittedSeq,
--       7 idempotency TTL seconds, 8 event count n,
--       9 a turn id the thread must already hold ('' = none),
--       10 the caller's lease on that turn ('' = none), 11 '1' = refuse a new
--       turn while one is open, 12 dispatch notice channel (sharded, the partition's),
--       then per event: event_id, '1' if the client chose it, body JSON
-- Returns {status, ...}: OK first last created_at thread_status thread_metadata thread_created_at
--   ready ('1' when the thread became ready to start a turn, and its notice went out) | NOT_FOUND | NO_TURN | EXISTS |
--   DUP_TURN "<thread> <turn>" | DUP_EVENTS seq... | CONFLICT event_id where | STALE last |
--   BUSY | LEASE_LOST | CANCELLED | QUEUED

local meta, stream, plog, eidx, turns, tidx, idem, tstate, queue, ready =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local thread_id, tenant = ARGV[1], ARGV[2]
local n = tonumber(ARGV[8])

-- Without an idempotency key the caller passes the meta key again as KEYS[7].
local has_idem = idem ~= meta
if has_idem then
  local prior = redis.call('GET', idem)
  if prior then return {'DUP_TURN', prior} end
end

local owner = redis.call('HGET', meta, 'tenant')
if ARGV[4] ~= '' then
  if owner or redis.call('HGET', meta, 'status') == 'deleted' then return {'EXISTS'} end
elseif owner ~= tenant or redis.call('HGET', meta, 'status') == 'deleted' then
  return {'NOT_FOUND'}
end

if ARGV[9] ~= '' then
  if redis.call('HEXISTS', turns, ARGV[9]) == 0 then return {'NO_TURN'} end
  -- Fencing: a running turn takes events only under its current lease.
  local running, lease = unpack(redis.call('HMGET', meta, 'running', 'lease'))
  if running == ARGV[9] then
    if ARGV[10] ~= lease then return {'LEASE_LOST'} end
  elseif ARGV[10] ~= '' then
    if redis.call('HGET', tstate, ARGV[9] .. ':status') == 'cancelled' then return {'CANCELLED'} end
    return {'LEASE_LOST'}
  elseif redis.call('HGET', tstate, ARGV[9] .. ':status') == 'queued' then
    -- Not started: no agent holds it yet, so nobody may write its events.
    return {'QUEUED'}
  end
end
if ARGV[11] == '1' and tonumber(redis.call('HGET', meta, 'open_turns') or '0') > 0 then return {'BUSY'} end

-- A retry carries the same client ids: all found means "return the originals".
-- Ids are per tenant: the index field is "<tenant>\0<event_id>" (eventIdKey).
local found, first_found = {}, nil
for i = 0, n - 1 do
  local id, chosen = ARGV[13 + i * 3], ARGV[14 + i * 3]
  if chosen == '1' then
    local where = redis.call('HGET', eidx, tenant .. '\0' .. id)
    if where then
      local sp = string.find(where, ' ', 1, true)
      if string.sub(where, 1, sp - 1) ~= thread_id then return {'CONFLICT', id, where} end
      found[#found + 1] = string.sub(where, sp + 1)
      first_found = first_found or id
    end
  end
end
if #found > 0 then
  if #found ~= n then return {'CONFLICT', first_found, 'partial'} end
  return {'DUP_EVENTS', unpack(found)}
end

local last = tonumber(redis.call('HGET', meta, 'last_seq') or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= last then return {'STALE', tostring(last)} end

local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))

if ARGV[4] ~= '' then
  redis.call('HSET', meta, 'tenant', tenant, 'status', 'idle', 'metadata', ARGV[4],
    'created_at', now, 'open_turns', '0', 'last_seq', '0')
end

local seq = last
for i = 0, n - 1 do
  seq = seq + 1
  local id = ARGV[13 + i * 3]
  redis.call('XADD', stream, seq .. '-0', 'i', id, 'e', ARGV[15 + i * 3], 'c', now)
  redis.call('HSET', eidx, tenant .. '\0' .. id, thread_id .. ' ' .. seq)
end
redis.call('HSET', meta, 'last_seq', seq, 'updated_at', now)
redis.call('XADD', plog, '*', 't', thread_id, 'f', last + 1, 'l', seq)

local became_ready = '0'
if ARGV[5] ~= '' then
  -- turn.submitted is the batch's last event; splice its seq and time into the turn JSON.
  local turn = '{"submittedSeq":' .. seq .. ',"createdAt":' .. now .. ',"updatedAt":' .. now .. ',' ..
    string.sub(ARGV[6], 2)
  redis.call('HSET', turns, ARGV[5], turn)
  redis.call('HSET', tidx, ARGV[5], thread_id .. ' ' .. tenant)
  redis.call('HINCRBY', meta, 'open_turns', 1)
  redis.call('HSET', meta, 'status', 'busy')
  redis.call('HSET', tstate, ARGV[5] .. ':status', 'queued', ARGV[5] .. ':attempt', 0)
  redis.call('RPUSH', queue, ARGV[5])
  if not redis.call('HGET', meta, 'running') then
    became_ready = '1'
    -- NX: a head waiting out a retry backoff keeps its time.
    redis.call('ZADD', ready, 'NX', now, thread_id)
    redis.call('SPUBLISH', ARGV[12], 'ready ' .. thread_id)
  end
  if has_idem then
    redis.call('SET', idem, thread_id .. ' ' .. ARGV[5], 'EX', tonumber(ARGV[7]))
  end
end

-- The thread as it now stands, so the caller needs no second round trip.
local m = redis.call('HMGET', meta, 'status', 'metadata', 'created_at')
return {'OK', tostring(last + 1), tostring(seq), now, m[1], m[2], m[3], became_ready}
