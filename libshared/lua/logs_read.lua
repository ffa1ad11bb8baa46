-- logs_read (api): a page of a job's log lines. ARGV[4..] = id, since (the
-- number of the first line wanted), max (lines at most). Line numbers count
-- every line ever appended (the record's 'logs' field, see log_append.lua);
-- the list holds the newest of them, so lines trimmed away are skipped.
-- Returns {} when there is no record, else {status, total, first, lines...}:
-- total is the number the next line will get, first the number of the first
-- line returned (>= since), each line "<ms> <text>".
local id = ARGV[4]
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'status', 'logs')
if not f[1] then return {} end
local total = tonumber(f[2] or '0') or 0
local since, max = tonumber(ARGV[5]) or 0, tonumber(ARGV[6]) or 100
if since >= total or max <= 0 then return {f[1], total, total} end
local lk = logs_key(id)
local head = total - redis.call('LLEN', lk) -- the number of the list's first line
if since < head then since = head end
local lines = redis.call('LRANGE', lk, since - head, since - head + max - 1)
return {f[1], total, since, unpack(lines)}
