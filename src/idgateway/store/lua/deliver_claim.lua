-- deliver_claim: claim due jobs of one vendor, with everything needed to deliver them.
-- Jobs whose lease ran out (their worker died or stalled) go back to the queue first. Each
-- claim gets a lease token; only the holder of the current token may complete the job, so a
-- stalled worker that wakes up after its lease was taken over cannot touch the new lease.
-- Request (ClaimRequest): {vendor, lease_ms, limit}
-- Reply (ClaimReply): ok {next_due? (ms), jobs: {record id: {fields, delivered?, job?,
--   tombstone?, companies: {company id: {name?, domain?}}, token}}}
local function fn_deliver_claim(keys, args)
  local P, req = keys[1], request(args)
  local now = math.floor(time_us() / 1000)
  local vendor = req.vendor
  local q, f, tokens = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'lease:' .. vendor
  for _, rec in ipairs(redis.call('ZRANGEBYSCORE', f, '-inf', now)) do
    redis.call('ZREM', f, rec)
    redis.call('HDEL', tokens, rec)
    redis.call('ZADD', q, now, rec)
  end
  local jobs = {}
  if req.limit > 0 then
    for _, rec in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, req.limit)) do
      redis.call('ZREM', q, rec)
      redis.call('HDEL', P .. 'q0:' .. vendor, rec)
      redis.call('ZADD', f, now + req.lease_ms, rec)
      local token = tostring(redis.call('INCR', P .. 'leaseseq:' .. vendor))
      redis.call('HSET', tokens, rec, token)
      local ns, id = split_record(rec)
      local fields = hash_to_table(redis.call('HGETALL', P .. ns .. ':' .. id))
      local companies = {}
      if fields['_co'] then
        for _, co in ipairs(cjson.decode(fields['_co'])) do
          local name, domain = unpack(redis.call('HMGET', P .. 'o:' .. co, 'name', 'domain'))
          companies[co] = {name = name or nil, domain = domain or nil}
        end
      end
      jobs[rec] = {
        fields = fields,
        delivered = redis.call('HGET', P .. 'dv:' .. vendor, rec) or nil,
        job = redis.call('HGET', P .. 'jobs:' .. vendor, rec) or nil,
        tombstone = redis.call('GET', P .. 'tomb:' .. rec) or nil,
        companies = companies,
        token = token,
      }
    end
  end
  local nxt = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  return reply({status = 'ok', next_due = nxt[2] and tonumber(nxt[2]) or nil, jobs = jobs})
end
