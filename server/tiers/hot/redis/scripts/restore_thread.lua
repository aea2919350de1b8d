-- Re-seeds a thread the hot tier lost (Redis data loss, or a restart of the
-- embedded memory tier) from the warm tier's record, so its seqs continue
-- where the log stands. Does nothing when the thread is there.
-- KEYS: 1 meta, 2 turns, 3 turn index.
-- ARGV: 1 thread_id, 2 tenant, 3 last_seq, 4 metadata JSON, 5 created_at,
--       6 updated_at, 7 status, 8 open turn count, then turn_id, turn JSON pairs.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'tenant', ARGV[2], 'last_seq', ARGV[3], 'persisted_seq', ARGV[3],
  'metadata', ARGV[4], 'created_at', ARGV[5], 'updated_at', ARGV[6], 'status', ARGV[7], 'open_turns', ARGV[8])
for i = 9, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[1])
end
return 1
