-- log_append: a running job's log lines, and optionally its progress, under
-- the fencing guard, in one call per flush (an exec handler's stderr from
-- the worker, an HTTP worker's POST /v1/jobs/{id}/logs). ARGV[4..] = id,
-- lease token, max_lines, max_line_bytes, progress (JSON text, '' = none),
-- then the lines. Guard: running under this lease token (like held()).
-- Each line is stored as "<ms> <text>" (Redis time of the append) in the
-- job's log list (logs_key, same slot), cut to max_line_bytes and marked
-- "...[truncated]"; the list keeps the newest max_lines. The record's 'logs'
-- field counts every line ever appended (the number of the next line), so a
-- reader pages with ?since across trims; its presence also tells terminal()
-- that the list exists and must expire with the record (the record has no
-- TTL while it runs, and nothing appends once it has left running).
-- A watched job (watch.lua: a follower or a long-poll) publishes its id on
-- the done channel, which wakes the api's followers to read the new lines.
-- Returns the new count, or -1 refused (nothing changed).
local id, token = ARGV[4], ARGV[5]
local max_lines, max_bytes = tonumber(ARGV[6]) or 1000, tonumber(ARGV[7]) or 4096
local jk = jkey(id)
local f = redis.call('HMGET', jk, 'status', 'lease', 'watch', 'logs')
if f[1] ~= 'running' or f[2] ~= token then return -1 end
if ARGV[8] ~= '' then redis.call('HSET', jk, 'progress', ARGV[8]) end
local n = #ARGV - 8
if n <= 0 then return tonumber(f[4] or '0') or 0 end
local lk = logs_key(id)
local prefix = int(now_ms()) .. ' '
local items, len = {}, 0
for i = 9, #ARGV do
  local l = ARGV[i]
  if #l > max_bytes then l = string.sub(l, 1, max_bytes) .. '...[truncated]' end
  items[#items + 1] = prefix .. l
  if #items == 4000 then
    len = redis.call('RPUSH', lk, unpack(items))
    items = {}
  end
end
if #items > 0 then len = redis.call('RPUSH', lk, unpack(items)) end
if len > max_lines then redis.call('LTRIM', lk, -max_lines, -1) end
local total = redis.call('HINCRBY', jk, 'logs', n)
if not f[4] then redis.call('HSET', jk, 'ext', '1') end -- see terminal_f in _lib.lua
if f[3] then redis.call('PUBLISH', GP .. 'done', id) end
return total
