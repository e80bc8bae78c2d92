-- deliver_schedule: move outbox events into one vendor's schedule, then ACK them, in one step.
-- A changed record is due `window_ms` after its latest change (a debounce), but never later
-- than `max_wait_ms` after it was first queued: a burst of changes collapses into one job, and
-- a record that never stops changing is still delivered. A job waiting for a retry keeps its
-- due time. A record in flight is marked dirty instead and queued again when that delivery
-- ends, so one record never has two deliveries in flight (SPEC §6: order, state not diffs).
-- P..'q0:'..vendor holds when each queued record was first queued.
-- Request (ScheduleRequest): {vendor (= consumer group), window_ms, max_wait_ms,
--   kinds: [event type], events: [[message id, record id, event type]]}
-- Reply (ScheduleReply): ok {scheduled}
local function fn_deliver_schedule(keys, args)
  local P, req = keys[1], request(args)
  local now = math.floor(time_us() / 1000)
  local vendor = req.vendor
  local kinds = {}
  for _, k in ipairs(req.kinds) do kinds[k] = true end
  local q, f, dirty = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'dirty:' .. vendor
  local first, jobs = P .. 'q0:' .. vendor, P .. 'jobs:' .. vendor
  local ids, scheduled = {}, 0
  for _, e in ipairs(req.events) do
    table.insert(ids, e[1])
    local rec, kind = e[2], e[3]
    if kinds[kind] then
      if redis.call('ZSCORE', f, rec) then
        redis.call('SADD', dirty, rec)
      elseif redis.call('ZADD', q, 'NX', now + req.window_ms, rec) == 1 then
        scheduled = scheduled + 1
        redis.call('HSET', first, rec, now)
      elseif redis.call('HEXISTS', jobs, rec) == 0 then
        local since = tonumber(redis.call('HGET', first, rec) or now)
        local due = math.min(now + req.window_ms, since + req.max_wait_ms)
        redis.call('ZADD', q, 'XX', 'GT', due, rec)
      end
    elseif kind == 'contact.deleted' then
      -- a vendor that takes no erasure: nothing of the record is kept for it (its version
      -- delivered, its last return message). A job in flight or queued ends in the worker,
      -- which finds the tombstone and clears the same (deliver_complete, `deleted`).
      if redis.call('ZSCORE', f, rec) then
        redis.call('SADD', dirty, rec)
      elseif not redis.call('ZSCORE', q, rec) then
        redis.call('HDEL', P .. 'dv:' .. vendor, rec)
        redis.call('HDEL', P .. 'notes:' .. vendor, rec)
      end
    end
  end
  if #ids > 0 then redis.call('XACK', P .. 'outbox', vendor, unpack(ids)) end
  return reply({status = 'ok', scheduled = scheduled})
end
