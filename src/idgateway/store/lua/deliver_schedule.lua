-- deliver_schedule: move outbox events into one vendor's schedule, then ACK them, in one step.
-- A record already queued keeps its (earlier) due time: a burst collapses into one job. A
-- record in flight is marked dirty instead and queued again when that delivery ends, so one
-- record never has two deliveries in flight (SPEC §6: order, state not diffs).
-- Request (ScheduleRequest): {vendor (= consumer group), window_ms, kinds: [event type],
--   events: [[message id, record id, event type]]}
-- Reply (ScheduleReply): ok {scheduled}
local function fn_deliver_schedule(keys, args)
  local P, req = keys[1], request(args)
  local now = math.floor(time_us() / 1000)
  local vendor = req.vendor
  local kinds = {}
  for _, k in ipairs(req.kinds) do kinds[k] = true end
  local q, f, dirty = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'dirty:' .. vendor
  local ids, scheduled = {}, 0
  for _, e in ipairs(req.events) do
    table.insert(ids, e[1])
    local rec, kind = e[2], e[3]
    if kinds[kind] then
      if redis.call('ZSCORE', f, rec) then
        redis.call('SADD', dirty, rec)
      else
        scheduled = scheduled + redis.call('ZADD', q, 'NX', now + req.window_ms, rec)
      end
    end
  end
  if #ids > 0 then redis.call('XACK', P .. 'outbox', vendor, unpack(ids)) end
  return reply({status = 'ok', scheduled = scheduled})
end
