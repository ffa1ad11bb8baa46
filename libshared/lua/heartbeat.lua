-- heartbeat: renew many leases of one queue in one call. ARGV[4] = lease_ms,
-- then id, lease token pairs. Returns one code per pair: 0 renewed, 1 lost
-- (not running under that token: stop, commit nothing), 2 renewed but a
-- cancel was requested (stop the handler, then cancel_ack).
local now = now_ms()
local lease = tonumber(ARGV[4])
local out = {}
for i = 5, #ARGV - 1, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', jkey(id), 'status', 'lease', 'queue', 'cancel')
  if f[1] == 'running' and f[2] == token then
    redis.call('ZADD', qkey(f[3], 'active'), now + lease, id)
    if f[4] == '1' then out[#out + 1] = 2 else out[#out + 1] = 0 end
  else
    out[#out + 1] = 1
  end
end
return out
