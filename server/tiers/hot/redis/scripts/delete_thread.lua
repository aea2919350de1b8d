-- Erases a thread's hot keys and leaves its meta hash as a tombstone
-- (status deleted), so appends answer NOT_FOUND and the id is never reused.
-- KEYS: 1 meta, 2 stream, 3 turns, 4 event index, 5 turn index,
--       6 turn state, 7 queue, 8 ready (partition), 9 leases (partition).
-- ARGV: 1 thread_id.
redis.call('ZREM', KEYS[8], ARGV[1])
local lease = redis.call('HGET', KEYS[1], 'lease')
if lease then redis.call('ZREM', KEYS[9], lease) end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'deleted')
  return 0
end
-- Index fields are "<tenant>\0<event_id>"; the bare id goes too, as written before ids were per tenant.
local tenant = redis.call('HGET', KEYS[1], 'tenant') or ''
local start = '-'
while true do
  local entries = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 500)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'i' then redis.call('HDEL', KEYS[4], tenant .. '\0' .. fields[i + 1], fields[i + 1]) end
    end
  end
  start = '(' .. entries[#entries][1]
end
for _, turn_id in ipairs(redis.call('HKEYS', KEYS[3])) do redis.call('HDEL', KEYS[5], turn_id) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[6], KEYS[7])
redis.call('HDEL', KEYS[1], 'running', 'lease', 'lease_until', 'sticky_agent', 'sticky_until', 'not_before')
redis.call('HSET', KEYS[1], 'status', 'deleted', 'metadata', '{}', 'open_turns', '0')
return 1
