-- Starts the thread's next queued turn for an agent under a new lease and
-- appends `turn.started`. ARGV: 3 agent_id, 4 lease_id, 5 ttl ms, 6 event id,
-- 7 the tenant the agent serves ('' = any).
-- Returns NONE | STICKY | TENANT owner | OK turn_id attempt lease_until turn_json
--   {turn state fields status attempt agent error output started ended updated} {meta, as HGETALL}:
--   the assignment's turn and thread as they stand, with no second round trip.
local agent, lease, ttl, event_id, served = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local m = redis.call('HMGET', meta, 'tenant', 'status', 'running', 'not_before', 'sticky_agent', 'sticky_until')
local now = now_ms()
if m[1] and served ~= '' and m[1] ~= served then return {'TENANT', m[1]} end
if not m[1] or m[2] == 'deleted' or m[3] then
  redis.call('ZREM', ready, thread_id)
  return {'NONE'}
end
local turn_id = redis.call('LINDEX', queue, 0)
if not turn_id then
  redis.call('ZREM', ready, thread_id)
  return {'NONE'}
end
if m[4] and tonumber(m[4]) > now then
  redis.call('ZADD', ready, m[4], thread_id)
  return {'NONE'}
end
if m[5] and m[5] ~= agent and tonumber(m[6]) > now then return {'STICKY'} end
redis.call('LPOP', queue)
local expires = now + ttl
local attempt = redis.call('HINCRBY', tstate, turn_id .. ':attempt', 1)
redis.call('HSET', tstate, turn_id .. ':status', 'running', turn_id .. ':agent', agent,
  turn_id .. ':started', now, turn_id .. ':updated', now)
redis.call('HSET', meta, 'running', turn_id, 'lease', lease, 'lease_until', expires,
  'sticky_agent', agent, 'sticky_until', expires)
redis.call('HDEL', meta, 'not_before')
redis.call('ZREM', ready, thread_id)
redis.call('ZADD', leases, expires, lease)
append_event(event_id, turn_id, 'turn.started', 'info',
  '{"attempt":' .. attempt .. ',"agent_id":' .. cjson.encode(agent) .. '}', now)
local state = redis.call('HMGET', tstate, turn_id .. ':status', turn_id .. ':attempt', turn_id .. ':agent', turn_id .. ':error',
  turn_id .. ':output', turn_id .. ':started', turn_id .. ':ended', turn_id .. ':updated')
return {'OK', turn_id, tostring(attempt), tostring(expires), redis.call('HGET', turns, turn_id), state, redis.call('HGETALL', meta)}
