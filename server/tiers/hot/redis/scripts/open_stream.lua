-- Takes one of a key's open-stream slots if one is free: drops slots whose
-- holder stopped refreshing them (a crashed server), counts, adds, at once.
-- KEYS: 1 the key's sorted set of stream ids scored by expiry (ms, Redis clock).
-- ARGV: 1 slot ttl ms, 2 stream id, 3 limit.
-- Returns {1, open} when taken (open counts it), {0, open} when the key is at its limit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local open = redis.call('ZCARD', KEYS[1])
if open >= tonumber(ARGV[3]) then
  return {0, open}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
-- Every slot expires by now + ttl: the set goes with the last one.
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {1, open + 1}
