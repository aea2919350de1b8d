-- After the persister committed a thread through seq ARGV[1]: remember it and
-- trim the thread stream to ARGV[2] events below it (never above it), dropping
-- the trimmed events from the partition's event-id index.
-- KEYS: 1 meta, 2 stream, 3 event index.  Returns the number of entries trimmed.
local meta, stream, eidx = KEYS[1], KEYS[2], KEYS[3]
local persisted, window = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('EXISTS', meta) == 0 then return 0 end
local before = tonumber(redis.call('HGET', meta, 'persisted_seq') or '0')
if persisted > before then redis.call('HSET', meta, 'persisted_seq', persisted) else persisted = before end
local keep_from = persisted - window + 1
if keep_from <= 1 then return 0 end
-- Index fields are "<tenant>\0<event_id>"; the bare id goes too, as written before ids were per tenant.
local tenant = redis.call('HGET', meta, 'tenant') or ''
local start, trimmed = '-', 0
while true do
  local entries = redis.call('XRANGE', stream, start, '(' .. keep_from .. '-0', 'COUNT', 500)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'i' then redis.call('HDEL', eidx, tenant .. '\0' .. fields[i + 1], fields[i + 1]) end
    end
  end
  trimmed = trimmed + #entries
  start = '(' .. entries[#entries][1]
end
if trimmed > 0 then redis.call('XTRIM', stream, 'MINID', keep_from .. '-0') end
return trimmed
