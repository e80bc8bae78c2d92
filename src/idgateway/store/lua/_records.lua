-- Resolving and changing one record (SPEC §4.1), through the overlay.
--
-- A record op (RecordOpWire in store/_wire.py):
--   {ns, new_id, target?, lookups: [[kind, value, path]], set: {hfield: json},
--    unset: [hfield], tags_add?: [tag], infer: [[hfield, type, path]],
--    required: [[hfield, path]], on_create?: {hfield: json}, pending?: {hfield: json}}
-- `spec` is the namespace's identifying fields: [[hfield, kind, is_list]].
-- Problems go to E.violations / E.conflicts / E.mismatches.

-- Apply one op. Returns {ns, id, created, changed} or nil (and 'notfound' when the op's
-- target does not exist). With `check`, only resolution and the stored-state checks run.
local function apply_record(ctx, op, spec, E, check)
  local ns = op.ns
  local owners, order = {}, {}
  for _, l in ipairs(op.lookups) do
    local owner = owner_of(ctx, ns, l[1], l[2])
    if owner then
      if not owners[owner] then owners[owner] = {}; table.insert(order, owner) end
      table.insert(owners[owner], l)
    end
  end
  local id, created = nil, false
  if op.target then
    if not o_exists(ctx, rec_key(ctx, ns, op.target)) then return nil, 'notfound' end
    id = op.target
  elseif #order == 1 then
    id = order[1]
  elseif #order == 0 then
    id, created = op.new_id, true
  end
  local conflicted = false
  if id == nil or (op.target and (#order > 1 or (#order == 1 and order[1] ~= id))) then
    conflicted = true
    for _, owner in ipairs(order) do
      for _, l in ipairs(owners[owner]) do
        table.insert(E.conflicts, {l[3], l[1], l[2], PREFIX_OF[ns] .. owner})
      end
    end
  end

  -- Stored-state checks: inferred types, required fields on create.
  local types_key = ctx.P .. 'types:' .. ns
  local new_types = {}
  local bad = #E.violations
  if #op.infer > 1 then
    local fields = {}
    for i, inf in ipairs(op.infer) do fields[i] = inf[1] end
    o_prefetch(ctx, types_key, fields)
  end
  for _, inf in ipairs(op.infer) do
    local stored = o_hget(ctx, types_key, inf[1])
    if not stored then
      new_types[inf[1]] = inf[2]
    elseif stored ~= inf[2] then
      table.insert(E.violations, {inf[3], 'type',
        'expected ' .. stored .. ' (the type this field was first stored with), got ' .. inf[2]})
    end
  end
  if created then
    for _, r in ipairs(op.required) do
      local v = op.set[r[1]] or (op.pending and op.pending[r[1]])
        or (op.on_create and op.on_create[r[1]])
      if v == nil or v == 'null' then
        table.insert(E.violations, {r[2], 'required', 'required when the record is created'})
      end
    end
  end
  if check or conflicted or #E.violations > bad then return nil end

  -- The new state: the op's values, then the session buffer where the op sets nothing.
  local key = rec_key(ctx, ns, id)
  local old = created and {} or o_hgetall(ctx, key)
  local sets, unset = {}, {}
  for _, hf in ipairs(op.unset) do unset[hf] = true end
  for hf, v in pairs(op.pending or {}) do
    if v == 'null' then unset[hf] = true else sets[hf] = v end
  end
  if created then
    for hf, v in pairs(op.on_create or {}) do sets[hf] = v; unset[hf] = nil end
  end
  for hf, v in pairs(op.set) do sets[hf] = v; unset[hf] = nil end
  for _, hf in ipairs(op.unset) do sets[hf] = nil; unset[hf] = true end
  -- SPEC §4.1: external_id anchors a record. A record found by other identifiers (or bound
  -- to a session) keeps the app's user id it has: a call naming another one is refused.
  local anchor = old['external_id']
  if anchor and (unset['external_id'] or (sets['external_id'] and sets['external_id'] ~= anchor)) then
    local path = '$'
    for _, l in ipairs(op.lookups) do if l[1] == 'x' then path = l[3] end end
    table.insert(E.mismatches, {path, cjson.decode(anchor), PREFIX_OF[ns] .. id})
    return nil
  end
  local writes, dels, changed = {}, {}, {}
  for hf, v in pairs(sets) do
    if old[hf] ~= v then writes[hf] = v; table.insert(changed, hf) end
  end
  for hf in pairs(unset) do
    if old[hf] ~= nil then table.insert(dels, hf); table.insert(changed, hf) end
  end
  if op.tags_add then
    local tags = old['tags'] and cjson.decode(old['tags']) or {}
    local added = false
    for _, t in ipairs(op.tags_add) do
      if not list_contains(tags, t) then table.insert(tags, t); added = true end
    end
    if added then
      table.sort(tags)
      writes['tags'] = cjson.encode(tags)
      table.insert(changed, 'tags')
    end
  end
  local deleted = {}
  for _, hf in ipairs(dels) do deleted[hf] = true end
  local function new_get(hf)
    if writes[hf] ~= nil then return writes[hf] end
    if deleted[hf] then return nil end
    return old[hf]
  end
  local before = id_values(spec, function(hf) return old[hf] end)
  local after = id_values(spec, new_get)
  local claims, frees = {}, {}
  for k, kv in pairs(after) do
    if not before[k] then
      local owner = owner_of(ctx, ns, kv[1], kv[2])
      if owner and owner ~= id then
        local path = '$'
        for _, l in ipairs(op.lookups) do
          if l[1] == kv[1] and l[2] == kv[2] then path = l[3] end
        end
        table.insert(E.conflicts, {path, kv[1], kv[2], PREFIX_OF[ns] .. owner})
        conflicted = true
      end
      table.insert(claims, kv)
    end
  end
  if conflicted then return nil end
  for k, kv in pairs(before) do
    if not after[k] then table.insert(frees, kv) end
  end

  -- Stage it.
  if created then ov(ctx, key).full = true end
  for hf, v in pairs(writes) do o_hset(ctx, key, hf, v) end
  for _, hf in ipairs(dels) do o_hdel(ctx, key, hf) end
  for _, kv in ipairs(frees) do
    local field = kv[1] .. ':' .. kv[2]
    local ixk = ix_key(ctx.P, ns, field)
    if o_hget(ctx, ixk, field) == id then o_hdel(ctx, ixk, field) end
  end
  for _, kv in ipairs(claims) do
    local field = kv[1] .. ':' .. kv[2]
    o_hset(ctx, ix_key(ctx.P, ns, field), field, id)
  end
  for hf, t in pairs(new_types) do o_hset(ctx, types_key, hf, t) end
  if created or #changed > 0 then touch(ctx, ns, id, created, changed) end
  return {ns = ns, id = id, created = created}
end

-- Link a contact to a company (idempotent): the contact's `_co` list and the company's `_n`.
local function link(ctx, contact_id, company_id)
  local ckey, okey = rec_key(ctx, 'c', contact_id), rec_key(ctx, 'o', company_id)
  local raw = o_hget(ctx, ckey, '_co')
  local linked = raw and cjson.decode(raw) or {}
  if list_contains(linked, company_id) then return end
  table.insert(linked, company_id)
  o_hset(ctx, ckey, '_co', cjson.encode(linked))
  touch(ctx, 'c', contact_id, false, {'_co'})
  o_hset(ctx, okey, '_n', tostring(tonumber(o_hget(ctx, okey, '_n') or '0') + 1))
  touch(ctx, 'o', company_id, false, {'_n'})
end

-- The failure of a call whose ops collected problems ({status, <its list>}), or nil.
local function problems_of(E)
  if #E.violations > 0 then return {status = 'invalid', violations = E.violations} end
  if #E.conflicts > 0 then return {status = 'conflict', conflicts = E.conflicts} end
  if #E.mismatches > 0 then return {status = 'mismatch', mismatches = E.mismatches} end
  return nil
end

-- The failure reply of a call whose ops collected problems, or nil.
local function problems_reply(E)
  local problem = problems_of(E)
  return problem and reply(problem)
end
