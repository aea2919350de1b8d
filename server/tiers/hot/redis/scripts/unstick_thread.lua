-- The agent left: its threads no longer wait for it. ARGV: 3 agent_id.
if redis.call('HGET', meta, 'sticky_agent') == ARGV[3] then
  redis.call('HDEL', meta, 'sticky_agent', 'sticky_until')
  if redis.call('LLEN', queue) > 0 and not redis.call('HGET', meta, 'running') then
    redis.call('SPUBLISH', channel, 'ready ' .. thread_id)
  end
end
return 1
