-- profile_read: a contact and the cached profile data of its email, in one round trip
-- (SPEC §7 renders).
-- Request (ProfileReadRequest): {id (bare contact id)}
-- Reply (ProfileReadReply): ok {fields, cache?: {d?, at?, inv?}} | notfound
local function fn_profile_read(keys, args)
  local P, req = keys[1], request(args)
  local fields = hash_to_table(redis.call('HGETALL', P .. 'c:' .. req.id))
  if next(fields) == nil then return reply({status = 'notfound', what = 'c'}) end
  local out = {status = 'ok', fields = fields}
  if fields['email'] then
    local cache = hash_to_table(redis.call('HGETALL', P .. 'pf:' .. cjson.decode(fields['email'])))
    if next(cache) ~= nil then out.cache = cache end
  end
  return reply(out)
end
