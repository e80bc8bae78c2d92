-- erase: a contact, its identifiers, company links and sessions (SPEC §5.3 DELETE).
-- Request (EraseRequest): {id (bare), spec: [[hfield, kind, is_list]], limits?}
-- Reply (EraseReply): ok | notfound | limited
local function fn_erase(keys, args)
  local P, req = keys[1], request(args)
  local now = time_us()
  local hit = rate_check(P, req.limits, now)
  if hit then return limited_reply(hit) end
  local now_ms = tostring(math.floor(now / 1000))
  local id = req.id
  local key = P .. 'c:' .. id
  local old = hash_to_table(redis.call('HGETALL', key))
  if next(old) == nil then return reply({status = 'notfound', what = 'c'}) end
  for _, kv in pairs(id_values(req.spec, function(hf) return old[hf] end)) do
    ix_del_if_owner(P, 'c', kv[1], kv[2], id)
  end
  for _, co in ipairs(old['_co'] and cjson.decode(old['_co']) or {}) do
    leave_company(P, co, now_ms)
  end
  tombstone(P, 'c_' .. id, old)
  -- the profile data fetched for it goes too (erasure)
  if old['email'] then redis.call('DEL', P .. 'pf:' .. cjson.decode(old['email'])) end
  redis.call('DEL', key)
  -- Its browser sessions go with it.
  local sessions = P .. 'cs:' .. id
  for _, sid in ipairs(redis.call('HKEYS', sessions)) do redis.call('DEL', P .. 's:' .. sid) end
  redis.call('DEL', sessions)
  emit(P, 'contact.deleted', 'c_' .. id, tonumber(old['_v'] or '0') + 1)
  return reply({status = 'ok'})
end
