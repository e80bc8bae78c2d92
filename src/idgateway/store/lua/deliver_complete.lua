-- deliver_complete: record the outcomes of deliveries of one vendor.
-- A result whose lease token is no longer current is dropped: its lease ran out and another
-- worker owns the job now. A record that changed while in flight is queued again.
-- Outcomes (OUTCOME, generated from idgateway.store.DeliveryOutcome):
--   ok: the version is delivered (a vendor ref is kept on the record without a version bump);
--   skip: nothing to send; retry: the job waits `delay_ms`; dead: into the dead-letter
--   stream; disabled / release: back to the queue, to be tried when the vendor may be called.
-- Request (CompleteRequest): {vendor, window_ms, results: [{rec, token, outcome, version?,
--   ref?, deleted?, job? (JSON text), delay_ms?, dead? {field: value}, note? (JSON text)}]}
-- Reply (CompleteReply): ok {applied}
local function fn_deliver_complete(keys, args)
  local P, req = keys[1], request(args)
  local now = math.floor(time_us() / 1000)
  local vendor, window = req.vendor, req.window_ms
  local q, f, dirty = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'dirty:' .. vendor
  local tokens = P .. 'lease:' .. vendor
  local jobs, dv = P .. 'jobs:' .. vendor, P .. 'dv:' .. vendor
  local applied = 0
  -- a record changed while in flight is due a window after now (see deliver_schedule)
  local function requeue(rec)
    if redis.call('ZADD', q, 'NX', now + window, rec) == 1 then
      redis.call('HSET', P .. 'q0:' .. vendor, rec, now)
    end
  end
  for _, r in ipairs(req.results) do
    local rec = r.rec
    if redis.call('HGET', tokens, rec) == r.token then
      applied = applied + 1
      redis.call('HDEL', tokens, rec)
      redis.call('ZREM', f, rec)
      local again = redis.call('SREM', dirty, rec) == 1
      if r.outcome == OUTCOME.OK or r.outcome == OUTCOME.SKIP then
        redis.call('HDEL', jobs, rec)
        if r.deleted then
          -- erased (delivered, or skipped by a vendor that takes no erasure): nothing of the
          -- record is kept for this vendor, neither its version nor its last return message
          redis.call('HDEL', dv, rec)
          redis.call('HDEL', P .. 'notes:' .. vendor, rec)
        end
        if r.outcome == OUTCOME.OK then
          if not r.deleted then redis.call('HSET', dv, rec, r.version) end
          -- the last delivery that carried a return message (GET /v1/deliveries?status=
          -- delivered)
          if r.note and not r.deleted then
            redis.call('HSET', P .. 'notes:' .. vendor, rec, r.note)
          end
          if r.ref then
            local ns, id = split_record(rec)
            local key = P .. ns .. ':' .. id
            if redis.call('EXISTS', key) == 1 then
              redis.call('HSET', key, 'r.' .. vendor, r.ref)
            else
              -- deleted while in flight: the ref goes to the tombstone, so the delete finds it
              local tomb = redis.call('GET', P .. 'tomb:' .. rec)
              if tomb then
                local t = cjson.decode(tomb)
                if type(t.vendor_refs) ~= 'table' then t.vendor_refs = {} end
                t.vendor_refs[vendor] = r.ref
                redis.call('SET', P .. 'tomb:' .. rec, cjson.encode(t), 'KEEPTTL')
              end
            end
          end
        end
        if again then requeue(rec) end
      elseif r.outcome == OUTCOME.RETRY then
        redis.call('HSET', jobs, rec, r.job)
        redis.call('ZADD', q, now + r.delay_ms, rec)
      elseif r.outcome == OUTCOME.DEAD then
        redis.call('HDEL', jobs, rec)
        local flat = {}
        for k, v in pairs(r.dead) do table.insert(flat, k); table.insert(flat, v) end
        local sid = redis.call('XADD', P .. 'dead', '*', unpack(flat))
        redis.call('HSET', P .. 'deadix', r.dead.id, sid)
        redis.call('HINCRBY', P .. 'deadn', vendor, 1)
        if again then requeue(rec) end
      else -- disabled, release: try again as soon as the vendor may be called
        if r.job then redis.call('HSET', jobs, rec, r.job) end
        redis.call('ZADD', q, now, rec)
      end
    end
  end
  return reply({status = 'ok', applied = applied})
end
