-- Claim due jobs of one vendor for delivery, with everything needed to deliver them.
-- KEYS[1]: outbox; ARGV: prefix, vendor, now ms, lease ms, limit
-- Jobs whose lease ran out (their worker died) go back to the queue first.
-- Reply: {next_due_ms or false, {rec, record hgetall, delivered version, job JSON,
--          tombstone JSON, {company hgetall...}}...}
local P, vendor, now, lease, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local q, f = P .. 'q:' .. vendor, P .. 'f:' .. vendor
for _, rec in ipairs(redis.call('ZRANGEBYSCORE', f, '-inf', now)) do
  redis.call('ZREM', f, rec)
  redis.call('ZADD', q, now, rec)
end
local claimed = {}
if limit > 0 then
  for _, rec in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZREM', q, rec)
    redis.call('ZADD', f, now + lease, rec)
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
      companies})
  end
end
local nxt = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
return {nxt[2] or false, claimed}
