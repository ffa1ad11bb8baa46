-- batch_get (api): a batch's record and a page of its member ids, in one
-- round trip. ARGV[4] = batch id, ARGV[5] = '1' to mark it waited on (its
-- finish then publishes the id on the done channel, as watch.lua does for a
-- job), ARGV[6] = offset, ARGV[7] = limit (0 = no ids).
-- Returns {} when there is no such batch (or it is still open: not accepted
-- yet), else {HGETALL of the record, ids}.
local bid, offset, limit = ARGV[4], tonumber(ARGV[6]), tonumber(ARGV[7])
local bk = bkey(bid)
local st = redis.call('HGET', bk, 'status')
if not st or st == 'open' then return {} end
if ARGV[5] == '1' and st ~= 'done' then redis.call('HSET', bk, 'watch', '1') end
local ids = {}
if limit > 0 then ids = redis.call('LRANGE', bkey(bid, 'ids'), offset, offset + limit - 1) end
return {redis.call('HGETALL', bk), ids}
