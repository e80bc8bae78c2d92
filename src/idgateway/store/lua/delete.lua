-- Erase a contact: free its identifiers, unlink its companies, delete it, emit the event.
-- KEYS[1]: outbox; ARGV: prefix, contact id (bare), index spec JSON, now (ms)
local P, id, spec, now = ARGV[1], ARGV[2], cjson.decode(ARGV[3]), ARGV[4]
local key = P .. 'c:' .. id
local old = hash_to_table(redis.call('HGETALL', key))
if next(old) == nil then return 0 end
for _, kv in pairs(id_values(spec, function(hf) return old[hf] end)) do
  ix_del_if_owner(P, 'c', kv[1], kv[2], id)
end
for _, co in ipairs(old['_co'] and cjson.decode(old['_co']) or {}) do
  local ckey = P .. 'o:' .. co
  if redis.call('EXISTS', ckey) == 1 then
    redis.call('HINCRBY', ckey, '_n', -1)
    redis.call('HSET', ckey, '_u', now)
    emit(P, 'company.upserted', 'co_' .. co, redis.call('HINCRBY', ckey, '_v', 1))
  end
end
tombstone(P, 'c_' .. id, old)
-- the profile data fetched for it goes too (erasure)
if old['email'] then redis.call('DEL', P .. 'pf:' .. cjson.decode(old['email'])) end
redis.call('DEL', key)
-- Its browser sessions go with it (SPEC §5.3).
local sessions = P .. 'cs:' .. id
for _, sid in ipairs(redis.call('HKEYS', sessions)) do redis.call('DEL', P .. 's:' .. sid) end
redis.call('DEL', sessions)
emit(P, 'contact.deleted', 'c_' .. id, tonumber(old['_v'] or '0') + 1)
return 1
