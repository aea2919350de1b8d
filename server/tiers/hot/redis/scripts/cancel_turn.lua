-- Cancels a queued or running turn and appends `turn.cancelled`; a running
-- turn's lease is revoked and its agent told. ARGV: 3 turn_id, 4 reason,
-- 5 event id, 6 tenant ('' = any). Returns OK | ENDED | NOT_FOUND.
local turn_id, reason, event_id, tenant = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local m = redis.call('HMGET', meta, 'tenant', 'running', 'lease')
local status = redis.call('HGET', tstate, turn_id .. ':status')
if not status or (tenant ~= '' and m[1] ~= tenant) then return {'NOT_FOUND'} end
local now = now_ms()
if status == 'queued' then
  if redis.call('LINDEX', queue, 0) == turn_id then redis.call('HDEL', meta, 'not_before') end
  redis.call('LREM', queue, 0, turn_id)
elseif status == 'running' and m[2] == turn_id then
  redis.call('HSET', tstate, 'lease:' .. m[3], 'cancelled')
  drop_lease(turn_id, m[3], true)
else
  return {'ENDED'}
end
append_event(event_id, turn_id, 'turn.cancelled', 'info',
  '{"reason":' .. cjson.encode(reason) .. ',"was":"' .. status .. '"}', now)
turn_ended(turn_id, 'cancelled', now)
return {'OK'}
