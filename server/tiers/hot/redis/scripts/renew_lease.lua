-- Extends the running turn's lease. ARGV: 3 lease_id, 4 ttl ms.
-- Returns OK expires | CANCELLED | LOST.
local lease, ttl = ARGV[3], tonumber(ARGV[4])
if redis.call('HGET', meta, 'lease') ~= lease then
  if redis.call('HGET', tstate, 'lease:' .. lease) == 'cancelled' then return {'CANCELLED'} end
  return {'LOST'}
end
local expires = now_ms() + ttl
redis.call('HSET', meta, 'lease_until', expires, 'sticky_until', expires)
redis.call('ZADD', leases, expires, lease)
return {'OK', tostring(expires)}
