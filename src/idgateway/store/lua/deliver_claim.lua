-- Claim due jobs of one vendor for delivery, with everything needed to deliver them.
-- KEYS[1]: outbox; ARGV: prefix, vendor, (unused), lease ms, limit
-- Jobs whose lease ran out (their worker died or stalled) go back to the queue first. Each
-- claim gets a lease token; only the holder of the current token may complete the job, so a
-- stalled worker that wakes up after its lease was taken over cannot touch the new lease.
-- Reply: {next_due_ms or false, {rec, record hgetall, delivered version, job JSON,
--          tombstone JSON, {company fields...}, lease token}...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P, vendor, lease, limit = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local q, f, tokens = P .. 'q:' .. vendor, P .. 'f:' .. vendor, P .. 'lease:' .. vendor
for _, rec in ipairs(redis.call('ZRANGEBYSCORE', f, '-inf', now)) do
  redis.call('ZREM', f, rec)
  redis.call('HDEL', tokens, rec)
  redis.call('ZADD', q, now, rec)
end
local claimed = {}
if limit > 0 then
  for _, rec in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZREM', q, rec)
    redis.call('ZADD', f, now + lease, rec)
    local token = tostring(redis.call('INCR', P .. 'leaseseq:' .. vendor))
    redis.call('HSET', tokens, rec, token)
    local ns, id = 'c', string.sub(rec, 3)
    if string.sub(rec, 1, 3) == 'co_' then ns, id = 'o', string.sub(rec, 4) end
    local state = redis.call('HGETALL', P .. ns .. ':' .. id)
    local companies = {}
    if ns == 'c' then
      for i = 1, #state, 2 do
        if state[i] == '_co' then
          for _, co in ipairs(cjson.decode(state[i + 1])) do
            table.insert(companies, {co, redis.call('HGET', P .. 'o:' .. co, 'name') or '',
                                     redis.call('HGET', P .. 'o:' .. co, 'domain') or ''})
          end
        end
      end
    end
    table.insert(claimed, {rec, state,
      redis.call('HGET', P .. 'dv:' .. vendor, rec) or '',
      redis.call('HGET', P .. 'jobs:' .. vendor, rec) or '',
      redis.call('GET', P .. 'tomb:' .. rec) or '',
      companies, token})
  end
end
local nxt = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
return {nxt[2] or false, claimed}
