-- Move outbox events into one vendor's schedule, then ACK them: one step per batch.
-- KEYS[1]: outbox; ARGV: prefix, vendor (= consumer group), (unused), coalescing window ms,
--   kinds JSON (event types this vendor takes), then per event: message id, record id, type.
-- A record already queued keeps its (earlier) due time: a burst collapses into one job.
-- A record in flight is marked dirty instead, and queued again when that delivery ends,
-- so one record never has two deliveries in flight.
-- Time is the Redis server's: workers on several machines need not agree on their clocks.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P, vendor, window = ARGV[1], ARGV[2], tonumber(ARGV[4])
local kinds = {}
for _, k in ipairs(cjson.decode(ARGV[5])) do kinds[k] = true end
local q, f, dirty = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'dirty:' .. vendor
local ids, scheduled = {}, 0
for i = 6, #ARGV, 3 do
  table.insert(ids, ARGV[i])
  local rec, kind = ARGV[i + 1], ARGV[i + 2]
  if kinds[kind] then
    if redis.call('ZSCORE', f, rec) then
      redis.call('SADD', dirty, rec)
    else
      scheduled = scheduled + redis.call('ZADD', q, 'NX', now + window, rec)
    end
  end
end
if #ids > 0 then redis.call('XACK', KEYS[1], vendor, unpack(ids)) end
return scheduled
