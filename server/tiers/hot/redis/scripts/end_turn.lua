-- Ends or requeues the turn a lease holds. ARGV: 3 lease_id, 4 turn_id
-- ('' = whichever the lease holds), 5 mode (complete | fail | release),
-- 6 output JSON (complete) or error text, 7 retryable '1'/'0',
-- 8 max attempts, 9 backoff base ms, 10 backoff max ms, 11 event id,
-- 12 only if lapsed '1'/'0'.
-- Returns OK turn_id status attempt | NOOP | CANCELLED | LOST.
local lease, want, mode, detail = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local retryable, max_attempts = ARGV[7] == '1', tonumber(ARGV[8])
local base, cap, event_id, only_lapsed = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11], ARGV[12] == '1'
local m = redis.call('HMGET', meta, 'lease', 'running', 'lease_until')
local now = now_ms()
if m[1] ~= lease or (want ~= '' and m[2] ~= want) then
  if mode == 'release' then return {'NOOP'} end
  if want ~= '' and redis.call('HGET', tstate, want .. ':status') == 'cancelled' then return {'CANCELLED'} end
  return {'LOST'}
end
if only_lapsed and tonumber(m[3]) > now then return {'NOOP'} end
local turn_id = m[2]
local attempt = tonumber(redis.call('HGET', tstate, turn_id .. ':attempt') or '1')
drop_lease(turn_id, lease, false)
if mode == 'complete' then
  redis.call('HSET', tstate, turn_id .. ':output', detail)
  append_event(event_id, turn_id, 'turn.completed', 'info', '{"output":' .. detail .. ',"attempt":' .. attempt .. '}', now)
  turn_ended(turn_id, 'completed', now)
  return {'OK', turn_id, 'completed', tostring(attempt)}
end
redis.call('HSET', tstate, turn_id .. ':error', detail)
if retryable and attempt < max_attempts then
  local retry_at = now + math.min(cap, base * 2 ^ (attempt - 1))
  redis.call('LPUSH', queue, turn_id)
  redis.call('HSET', tstate, turn_id .. ':status', 'queued', turn_id .. ':updated', now)
  redis.call('HSET', meta, 'not_before', retry_at)
  -- Another agent may take the retry at once: the one that failed it is not waited for.
  redis.call('HDEL', meta, 'sticky_agent', 'sticky_until')
  redis.call('ZADD', ready, retry_at, thread_id)
  append_event(event_id, turn_id, 'turn.retrying', 'warn', '{"attempt":' .. attempt .. ',"error":' ..
    cjson.encode(detail) .. ',"retry_at_ms":' .. string.format('%d', retry_at) .. '}', now)
  return {'OK', turn_id, 'queued', tostring(attempt)}
end
local status, type, level = 'failed', 'turn.failed', 'error'
if retryable then status, type = 'dead_lettered', 'turn.dead_lettered' end
append_event(event_id, turn_id, type, level, '{"attempt":' .. attempt .. ',"error":' .. cjson.encode(detail) .. '}', now)
turn_ended(turn_id, status, now)
return {'OK', turn_id, status, tostring(attempt)}
