-- Put a dead delivery back in its vendor's queue. KEYS[1]: outbox
-- ARGV: prefix, delivery id. Reply: {vendor, record id} or false.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P, id = ARGV[1], ARGV[2]
local sid = redis.call('HGET', P .. 'deadix', id)
if not sid then return false end
local entry = redis.call('XRANGE', P .. 'dead', sid, sid)[1]
redis.call('HDEL', P .. 'deadix', id)
if not entry then return false end
local fields = {}
for i = 1, #entry[2], 2 do fields[entry[2][i]] = entry[2][i + 1] end
redis.call('XDEL', P .. 'dead', sid)
redis.call('HINCRBY', P .. 'deadn', fields.vendor, -1)
redis.call('HDEL', P .. 'jobs:' .. fields.vendor, fields.record_id)
if not redis.call('ZSCORE', P .. 'f:' .. fields.vendor, fields.record_id) then
  redis.call('ZADD', P .. 'q:' .. fields.vendor, now, fields.record_id)
end
return {fields.vendor, fields.record_id}
