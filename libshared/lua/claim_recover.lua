-- claim_recover: a claimer whose claim reply was lost (a timeout, a dropped
-- connection) takes back what that claim gave it, so the jobs run now
-- instead of waiting out their lease and losing an attempt. ARGV[4..] =
-- queue, lease_ms, nonce (the lost call's). Every job of the claim's receipt
-- still running under a lease token with that nonce gets a fresh lease and is
-- returned as claim returns it (same fence and token, started = the claim's
-- time); the receipt is deleted. Returns the claim layout: 10 entries per
-- job, then now, then 0.
local q, lease, nonce = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local rk = rkey(nonce)
local list = redis.call('GET', rk)
local now = now_ms()
local out = {}
if list then
  redis.call('DEL', rk)
  local suffix = '-' .. nonce
  for id in string.gmatch(list, '[^,]+') do
    local jk = jkey(id)
    local f = redis.call('HMGET', jk, 'status', 'lease', 'fence', 'attempts', 'type', 'payload',
      'max_attempts', 'timeout_s', 'created', 'run_at')
    if f[1] == 'running' and f[2] and string.sub(f[2], -#suffix) == suffix then
      redis.call('ZADD', qkey(q, 'active'), now + lease, id)
      out[#out + 1] = id
      out[#out + 1] = f[3]
      out[#out + 1] = f[2]
      out[#out + 1] = f[4]
      for i = 5, 10 do out[#out + 1] = f[i] or '' end
    end
  end
end
out[#out + 1] = now
out[#out + 1] = 0
return out
