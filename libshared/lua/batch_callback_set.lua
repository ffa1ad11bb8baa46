-- batch_callback_set (janitor): records the callback job ARGV[5] the
-- janitor submitted for done batch ARGV[4] of queue ARGV[6] (see
-- batch_callbacks.lua) and takes the batch out of the release index.
-- Returns 1 recorded, 0 nothing pending (another janitor recorded it).
local bid, cbid, q = ARGV[4], ARGV[5], ARGV[6]
local bk = bkey(bid)
redis.call('ZREM', qkey(q, 'batches'), bid)
if not redis.call('HGET', bk, 'cb_pending') then return 0 end
redis.call('HDEL', bk, 'cb_pending')
redis.call('HSET', bk, 'callback', cbid)
return 1
