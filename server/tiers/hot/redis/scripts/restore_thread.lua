-- Re-seeds a thread the hot tier lost (Redis data loss, or a restart of the
-- embedded memory tier) from the warm tier's record, so its seqs continue
-- where the log stands, and rebuilds its dispatch state from the turns: open
-- turns queue in submission order; a turn that was running keeps a lease that
-- has already lapsed, so the sweeper requeues it. Does nothing when the
-- thread is there.
-- KEYS: 1 meta, 2 turns, 3 turn index, 4 turn state, 5 queue, 6 ready, 7 leases.
-- ARGV: 1 thread_id, 2 tenant, 3 last_seq, 4 metadata JSON, 5 created_at,
--       6 updated_at, 7 status, 8 open turn count, then per turn in
--       submission order: turn_id, turn JSON, status, attempt, agent_id.
local meta, turns, tidx, tstate, queue, ready, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
if redis.call('EXISTS', meta) == 1 then return 0 end
redis.call('HSET', meta, 'tenant', ARGV[2], 'last_seq', ARGV[3], 'persisted_seq', ARGV[3],
  'metadata', ARGV[4], 'created_at', ARGV[5], 'updated_at', ARGV[6], 'status', ARGV[7], 'open_turns', ARGV[8])
local running = nil
for i = 9, #ARGV, 5 do
  local turn_id, status = ARGV[i], ARGV[i + 2]
  redis.call('HSET', turns, turn_id, ARGV[i + 1])
  redis.call('HSET', tidx, turn_id, ARGV[1] .. ' ' .. ARGV[2])
  redis.call('HSET', tstate, turn_id .. ':status', status, turn_id .. ':attempt', ARGV[i + 3], turn_id .. ':agent', ARGV[i + 4])
  if status == 'running' and not running then
    running = turn_id
    local lease = ARGV[1] .. '.restored'
    redis.call('HSET', meta, 'running', turn_id, 'lease', lease, 'lease_until', 0)
    redis.call('ZADD', leases, 0, lease)
  elseif status == 'queued' or status == 'running' then
    redis.call('RPUSH', queue, turn_id)
  end
end
if not running and redis.call('LLEN', queue) > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', ready, tonumber(t[1]) * 1000, ARGV[1])
end
return 1
