-- Find a record by one identifying value: the id and the record in one step.
-- KEYS[1]: outbox; ARGV: prefix, ns, kind, value. Reply: {id, hgetall} or false.
local P, ns = ARGV[1], ARGV[2]
local id = ix_get(P, ns, ARGV[3], ARGV[4])
if not id then return false end
local flat = redis.call('HGETALL', P .. ns .. ':' .. id)
if #flat == 0 then return false end
return {id, flat}
