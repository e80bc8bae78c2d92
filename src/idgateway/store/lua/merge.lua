-- merge: contact `from` into `into` (SPEC §5.3): identifiers, tags and companies move; every
-- value already on `into` wins; fields `into` lacks are filled from `from`. A primary value
-- of `from` that `into` already has a different one of moves to the matching list field
-- (email -> secondary_emails) when there is one, else it is freed.
-- Request (MergeRequest): {into, from (bare ids), spec: [[hfield, kind, is_list]],
--   session_ttl (ms), limits?}
-- Reply (MergeReply): ok {changed, fields} | notfound {what = 'into' | 'from'} | limited
local function fn_merge(keys, args)
  local P, req = keys[1], request(args)
  local now = time_us()
  local hit = rate_check(P, req.limits, now)
  if hit then return limited_reply(hit) end
  local ctx = new_ctx(P, now)
  local into, from, spec = req.into, req['from'], req.spec
  local ikey, fkey = rec_key(ctx, 'c', into), rec_key(ctx, 'c', from)
  local a = o_hgetall(ctx, ikey)
  local b = hash_to_table(redis.call('HGETALL', fkey))
  if next(a) == nil then return reply({status = 'notfound', what = 'into'}) end
  if next(b) == nil then return reply({status = 'notfound', what = 'from'}) end

  local list_of_kind, spec_of = {}, {}
  for _, s in ipairs(spec) do
    spec_of[s[1]] = s
    if s[3] == 1 then list_of_kind[s[2]] = s[1] end
  end
  local changed = {}
  local function cur(hf) return o_hget(ctx, ikey, hf) end
  local function put(hf, v)
    if v then o_hset(ctx, ikey, hf, v) else o_hdel(ctx, ikey, hf) end
    table.insert(changed, hf)
  end
  local function union_into(hf, values)
    local list = cur(hf) and cjson.decode(cur(hf)) or {}
    local added = false
    for _, v in ipairs(values) do
      if not list_contains(list, v) then table.insert(list, v); added = true end
    end
    if added then
      if hf == 'tags' then table.sort(list) end
      put(hf, cjson.encode(list))
    end
  end

  -- Free every index entry of `from` first; the new state of `into` re-claims what it keeps.
  for _, kv in pairs(id_values(spec, function(hf) return b[hf] end)) do
    ix_del_if_owner(P, 'c', kv[1], kv[2], from)
  end
  for hf, v in pairs(b) do
    local s = spec_of[hf]
    if string.sub(hf, 1, 1) == '_' or string.sub(hf, 1, 2) == 'r.' then
      -- bookkeeping and vendor refs stay with their record
    elseif hf == 'tags' or (s and s[3] == 1) then
      union_into(hf, cjson.decode(v))
    elseif cur(hf) == nil then
      put(hf, v)
    elseif s and cur(hf) ~= v and list_of_kind[s[2]] then
      union_into(list_of_kind[s[2]], {cjson.decode(v)})
    end
  end
  -- A value now both primary and secondary stays primary only.
  for kind, lhf in pairs(list_of_kind) do
    if cur(lhf) then
      local keep, primaries = {}, {}
      for _, s in ipairs(spec) do
        if s[2] == kind and s[3] == 0 and cur(s[1]) then primaries[cjson.decode(cur(s[1]))] = true end
      end
      local dropped = false
      for _, v in ipairs(cjson.decode(cur(lhf))) do
        if primaries[v] then dropped = true else table.insert(keep, v) end
      end
      if dropped then put(lhf, #keep > 0 and cjson.encode(keep) or false) end
    end
  end
  -- Companies: from's links move to into; a company linked to both loses one member.
  local alinks = cur('_co') and cjson.decode(cur('_co')) or {}
  local moved = false
  for _, co in ipairs(b['_co'] and cjson.decode(b['_co']) or {}) do
    if list_contains(alinks, co) then
      leave_company(P, co, ctx.now)
    else
      table.insert(alinks, co); moved = true
    end
  end
  if moved then put('_co', cjson.encode(alinks)) end

  for _, kv in pairs(id_values(spec, cur)) do
    local field = kv[1] .. ':' .. kv[2]
    o_hset(ctx, ix_key(P, 'c', field), field, into)
  end
  touch(ctx, 'c', into, false, changed)
  commit(ctx)  -- one version bump and one contact.upserted event for `into`

  tombstone(P, 'c_' .. from, b)
  if b['email'] then redis.call('DEL', P .. 'pf:' .. cjson.decode(b['email'])) end
  redis.call('DEL', fkey)
  redis.call('HSET', P .. 'merged', from, into)
  -- Sessions bound to `from` now follow `into`.
  local fsessions, isessions = P .. 'cs:' .. from, P .. 'cs:' .. into
  for _, sid in ipairs(redis.call('HKEYS', fsessions)) do
    if redis.call('EXISTS', P .. 's:' .. sid) == 1 then
      redis.call('HSET', P .. 's:' .. sid, '_ct', into)
      redis.call('HSET', isessions, sid, '1')
    end
  end
  redis.call('DEL', fsessions)
  if redis.call('EXISTS', isessions) == 1 then redis.call('PEXPIRE', isessions, req.session_ttl) end
  emit(P, 'contact.deleted', 'c_' .. from, tonumber(b['_v'] or '0') + 1)
  local t = ctx.touched[ikey]
  return reply({status = 'ok', changed = t.changed, fields = o_hgetall(ctx, ikey)})
end
