-- Pushes back the expiry of the slots a server still holds. XX: a slot
-- released (or expired) meanwhile is not brought back.
-- KEYS: 1 the key's sorted set. ARGV: 1 slot ttl ms, 2.. stream ids.
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[i])
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0
