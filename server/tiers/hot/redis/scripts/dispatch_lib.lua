-- Shared by the dispatch scripts (prepended to each when it is loaded).
-- KEYS of every dispatch script: 1 meta, 2 stream, 3 partition log,
-- 4 event index, 5 turn state, 6 queue, 7 ready (partition), 8 leases
-- (partition), 9 turns. ARGV 1 thread_id, 2 notice channel (sharded, the partition's).
local meta, stream, plog, eidx, tstate, queue, ready, leases, turns =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local thread_id, channel = ARGV[1], ARGV[2]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends one system event after the thread's last seq (stream, event index,
-- partition log), as append_events.lua does for a batch.
local function append_event(event_id, turn_id, type, level, payload_json, now)
  local seq = tonumber(redis.call('HGET', meta, 'last_seq') or '0') + 1
  local tenant = redis.call('HGET', meta, 'tenant')
  local body = '{"id":"' .. event_id .. '","tu":"' .. turn_id .. '","ty":"' .. type .. '","p":' .. payload_json ..
    ',"m":{},"sv":1,"tn":' .. cjson.encode(tenant) .. ',"l":"' .. level .. '"}'
  redis.call('XADD', stream, seq .. '-0', 'i', event_id, 'e', body, 'c', now)
  redis.call('HSET', eidx, tenant .. '\0' .. event_id, thread_id .. ' ' .. seq)
  redis.call('HSET', meta, 'last_seq', seq, 'updated_at', now)
  redis.call('XADD', plog, '*', 't', thread_id, 'f', seq, 'l', seq)
  return seq
end

-- A turn left the open set (ended): the thread may go idle, the next queued turn may start.
local function turn_ended(turn_id, status, now)
  redis.call('HSET', tstate, turn_id .. ':status', status, turn_id .. ':ended', now, turn_id .. ':updated', now)
  local open = redis.call('HINCRBY', meta, 'open_turns', -1)
  if open <= 0 then redis.call('HSET', meta, 'status', 'idle', 'open_turns', 0) end
  if redis.call('LLEN', queue) > 0 and not redis.call('HGET', meta, 'running') then
    -- A retry waiting out its backoff keeps its time.
    local due = math.max(now, tonumber(redis.call('HGET', meta, 'not_before') or '0'))
    redis.call('ZADD', ready, due, thread_id)
    if due <= now then redis.call('SPUBLISH', channel, 'ready ' .. thread_id) end
  else
    redis.call('ZREM', ready, thread_id)
  end
end

-- The running turn's lease ends, whatever the outcome; its agent's feed learns it.
local function drop_lease(turn_id, lease, cancelled)
  redis.call('ZREM', leases, lease)
  redis.call('HDEL', meta, 'running', 'lease', 'lease_until')
  redis.call('SPUBLISH', channel, 'ended ' .. turn_id .. ' ' .. lease .. (cancelled and ' 1' or ' 0'))
end
