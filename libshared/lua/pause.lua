-- pause: ARGV[4..] = queue, '1' pause / '0' resume. Paused queues accept
-- jobs but claim yields nothing. Resuming wakes idle workers. Returns 1.
-- (The caller puts the queue in the queue set: src/queue_registry.c.)
local q = ARGV[4]
if ARGV[5] == '1' then
  redis.call('SET', qkey(q, 'paused'), 1)
else
  redis.call('DEL', qkey(q, 'paused'))
  wake(q, 16)
end
return 1
