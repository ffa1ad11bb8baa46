-- schedule_list (read-only): schedules by name. ARGV[4] = one name, or ''
-- for all; ARGV[5] = at most this many. Returns {now_ms, {field, value, ...}
-- per schedule}.
local out = {now_ms()}
local names
if ARGV[4] ~= '' then
  names = {ARGV[4]}
else
  names = redis.call('ZRANGE', SP .. 'sched_all', 0, tonumber(ARGV[5]) - 1)
end
for _, name in ipairs(names) do
  local h = redis.call('HGETALL', SP .. 'sched:' .. name)
  if #h > 0 then out[#out + 1] = h end
end
return out
