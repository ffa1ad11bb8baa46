-- workers_prune: drop workers silent for more than ARGV[4] ms. Returns count.
local horizon = now_ms() - tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', GP .. 'workers', '-inf', horizon, 'LIMIT', 0, 1000)
for _, id in ipairs(ids) do
  redis.call('ZREM', GP .. 'workers', id)
  redis.call('DEL', GP .. 'worker:' .. id)
end
return #ids
