-- Record the outcome of deliveries of one vendor. KEYS[1]: outbox
-- ARGV: prefix, vendor, (unused), coalescing window ms, results JSON:
--   [{rec, token, outcome: ok|skip|retry|dead|disabled|release, version?, ref?, deleted?,
--     job?: JSON text (retry), delay?: ms (retry), dead?: [field, value, ...], id?,
--     note?: JSON text (ok: the delivery with the adapter's return message)}]
-- A result whose lease token is no longer current is dropped: its lease ran out and another
-- worker owns the job now.
-- ok: the version is delivered (a vendor ref is kept on the record without a version bump);
-- retry: the job waits until `due`; dead: into the dead-letter stream; disabled / release:
-- back to the queue. A record that changed while in flight is queued again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P, vendor, window = ARGV[1], ARGV[2], tonumber(ARGV[4])
local q, f, dirty = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'dirty:' .. vendor
local tokens = P .. 'lease:' .. vendor
local jobs, dv = P .. 'jobs:' .. vendor, P .. 'dv:' .. vendor
for _, r in ipairs(cjson.decode(ARGV[5])) do
  local rec = r.rec
  if redis.call('HGET', tokens, rec) == r.token then
    redis.call('HDEL', tokens, rec)
    redis.call('ZREM', f, rec)
    local again = redis.call('SREM', dirty, rec) == 1
    if r.outcome == 'ok' or r.outcome == 'skip' then
      redis.call('HDEL', jobs, rec)
      if r.outcome == 'ok' then
        if r.deleted then redis.call('HDEL', dv, rec) else redis.call('HSET', dv, rec, r.version) end
        -- the last delivery that carried a return message (GET /v1/deliveries?status=delivered);
        -- an erased record keeps none
        if r.deleted then
          redis.call('HDEL', P .. 'notes:' .. vendor, rec)
        elseif r.note then
          redis.call('HSET', P .. 'notes:' .. vendor, rec, r.note)
        end
        if r.ref then
          local ns, id = 'c', string.sub(rec, 3)
          if string.sub(rec, 1, 3) == 'co_' then ns, id = 'o', string.sub(rec, 4) end
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
      if again then redis.call('ZADD', q, 'NX', now + window, rec) end
    elseif r.outcome == 'retry' then
      redis.call('HSET', jobs, rec, r.job)
      redis.call('ZADD', q, now + r.delay, rec)
    elseif r.outcome == 'dead' then
      redis.call('HDEL', jobs, rec)
      local sid = redis.call('XADD', P .. 'dead', '*', unpack(r.dead))
      redis.call('HSET', P .. 'deadix', r.id, sid)
      redis.call('HINCRBY', P .. 'deadn', vendor, 1)
      if again then redis.call('ZADD', q, 'NX', now + window, rec) end
    else -- disabled, release: try again as soon as the vendor may be called
      if r.job then redis.call('HSET', jobs, rec, r.job) end
      redis.call('ZADD', q, now, rec)
    end
  end
end
return 1
