-- Identify: resolve, validate against stored state, write, append outbox events: one step.
-- KEYS[1]: the tenant's outbox stream (only to route the call to the tenant's slot)
-- ARGV[1]: key prefix; ARGV[2]: JSON request:
--   {now, link, check?, records: [op, ...]}  -- companies first, so a contact can link to them
--   check: resolve and run the stored-state checks only; never writes
--   op = {ns, new_id, target?, lookups: [[kind, value, path]], set: {hfield: json},
--         unset: [hfield], tags_add?: [tag], infer: [[hfield, type, path]],
--         required: [[hfield, path]], spec: [[hfield, kind, is_list]]}
-- Reply: {'ok', blocks...} with block = {id, created, changed, hgetall} (false when absent)
--        {'conflict', [[path, kind, value, owner_id]]}
--        {'invalid', [[path, code, message]]}
--        {'notfound', ns}
local P = ARGV[1]
local req = cjson.decode(ARGV[2])
local now = req.now

local conflicts, violations = {}, {}
local plans = {}
-- Index entries read in phase 1, reused in phase 3: "ns\0kind:value" -> owner or false.
local seen = {}
local function owner_of(ns, kind, value)
  local k = ns .. '\0' .. kind .. ':' .. value
  if seen[k] == nil then seen[k] = ix_get(P, ns, kind, value) or false end
  return seen[k] or nil
end

-- Phase 1: resolve every record, collecting conflicts; read nothing twice.
for i, op in ipairs(req.records) do
  local ns = op.ns
  local owners, order = {}, {}
  for _, l in ipairs(op.lookups) do
    local owner = owner_of(ns, l[1], l[2])
    if owner then
      if not owners[owner] then owners[owner] = {}; table.insert(order, owner) end
      table.insert(owners[owner], l)
    end
  end
  local id, created = nil, false
  if op.target then
    if redis.call('EXISTS', P .. ns .. ':' .. op.target) == 0 then
      return {'notfound', ns}
    end
    id = op.target
  elseif #order == 1 then
    id = order[1]
  elseif #order == 0 then
    id, created = op.new_id, true
  end
  if id == nil or (op.target and (#order > 1 or (#order == 1 and order[1] ~= id))) then
    for _, owner in ipairs(order) do
      for _, l in ipairs(owners[owner]) do
        table.insert(conflicts, {l[3], l[1], l[2], PREFIX_OF[ns] .. owner})
      end
    end
  end
  plans[i] = {op = op, ns = ns, id = id, created = created}
end
-- Phase 2: checks against stored state (inferred types, required fields on create).
-- Violations outrank conflicts: the caller must fix the request either way.
for _, plan in ipairs(plans) do
  local op = plan.op
  local types_key = P .. 'types:' .. plan.ns
  plan.new_types = {}
  for _, inf in ipairs(op.infer) do
    local stored = redis.call('HGET', types_key, inf[1])
    if not stored then table.insert(plan.new_types, inf[1]); table.insert(plan.new_types, inf[2]) end
    if stored and stored ~= inf[2] then
      table.insert(violations, {inf[3], 'type',
        'expected ' .. stored .. ' (the type this field was first stored with), got ' .. inf[2]})
    end
  end
  if plan.created then
    for _, r in ipairs(op.required) do
      table.insert(violations, {r[2], 'required', 'required when the record is created'})
    end
  end
end
-- Check mode (a call that already failed validation): report what the stored state adds.
if req.check or #violations > 0 then return {'invalid', violations} end
if #conflicts > 0 then return {'conflict', conflicts} end

-- Phase 3: compute each record's new state; a value owned by another record is a conflict.
for _, plan in ipairs(plans) do
  local op, ns, id = plan.op, plan.ns, plan.id
  local key = P .. ns .. ':' .. id
  local old = plan.created and {} or hash_to_table(redis.call('HGETALL', key))
  local writes, dels, changed = {}, {}, {}
  for hf, v in pairs(op.set) do
    if old[hf] ~= v then writes[hf] = v; table.insert(changed, hf) end
  end
  for _, hf in ipairs(op.unset) do
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
  local function new_get(hf)
    if writes[hf] ~= nil then return writes[hf] end
    for _, d in ipairs(dels) do if d == hf then return nil end end
    return old[hf]
  end
  local before = id_values(op.spec, function(hf) return old[hf] end)
  local after = id_values(op.spec, new_get)
  local claims, frees = {}, {}
  for k, kv in pairs(after) do
    if not before[k] then
      local owner = owner_of(ns, kv[1], kv[2])
      if owner and owner ~= id then
        local path = '$'
        for _, l in ipairs(op.lookups) do
          if l[1] == kv[1] and l[2] == kv[2] then path = l[3] end
        end
        table.insert(conflicts, {path, kv[1], kv[2], PREFIX_OF[ns] .. owner})
      end
      table.insert(claims, kv)
    end
  end
  for k, kv in pairs(before) do
    if not after[k] then table.insert(frees, kv) end
  end
  plan.key, plan.old, plan.writes, plan.dels, plan.changed = key, old, writes, dels, changed
  plan.claims, plan.frees = claims, frees
end
if #conflicts > 0 then return {'conflict', conflicts} end

-- Link the contact to the company (both resolved in this call).
if req.link and #plans == 2 then
  local co, ct = plans[1], plans[2]
  local linked = ct.old['_co'] and cjson.decode(ct.old['_co']) or {}
  if not list_contains(linked, co.id) then
    table.insert(linked, co.id)
    ct.writes['_co'] = cjson.encode(linked)
    table.insert(ct.changed, '_co')
    local count = tonumber(co.old['_n'] or '0') + 1
    co.writes['_n'] = tostring(count)
    table.insert(co.changed, '_n')
  end
end

-- Phase 4: write (version and timestamps in the same HSET), append events; the reply is
-- built from the state already read instead of a second HGETALL.
local reply = {'ok'}
for i, plan in ipairs(plans) do
  local ns, id, key = plan.ns, plan.id, plan.key
  local state = plan.old
  if plan.created or #plan.changed > 0 then
    local version = tostring(tonumber(state['_v'] or '0') + 1)
    plan.writes['_v'] = version
    plan.writes['_u'] = now
    if plan.created then plan.writes['_c'] = now end
    local args = {}
    for hf, v in pairs(plan.writes) do
      table.insert(args, hf); table.insert(args, v); state[hf] = v
    end
    redis.call('HSET', key, unpack(args))
    if #plan.dels > 0 then
      redis.call('HDEL', key, unpack(plan.dels))
      for _, hf in ipairs(plan.dels) do state[hf] = nil end
    end
    for _, kv in ipairs(plan.frees) do ix_del_if_owner(P, ns, kv[1], kv[2], id) end
    for _, kv in ipairs(plan.claims) do ix_set(P, ns, kv[1], kv[2], id) end
    if #plan.new_types > 0 then
      redis.call('HSET', P .. 'types:' .. ns, unpack(plan.new_types))
    end
    emit(P, ETYPE_OF[ns] .. '.upserted', PREFIX_OF[ns] .. id, version)
  end
  local flat = {}
  for hf, v in pairs(state) do table.insert(flat, hf); table.insert(flat, v) end
  reply[i + 1] = {id, plan.created and 1 or 0, plan.changed, flat}
end
return reply
