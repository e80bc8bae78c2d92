-- Record writes through an overlay: reads go through to Redis once and are cached, writes
-- stay in the overlay until commit(). A script can therefore run several steps (identify,
-- flush a session buffer, link a company, ...) where each sees the previous ones, and write
-- nothing at all when a later step fails: all-or-nothing without MULTI.
-- Needs _common.lua. P (tenant key prefix) and NOW (epoch ms, string) are set by the script.

local Ov = {}
local touched, touched_order = {}, {}
local expiries = {}

local function ov(key)
  local e = Ov[key]
  if not e then
    e = {f = {}, full = false, gone = false, set = {}, del = {}}
    Ov[key] = e
  end
  return e
end

local function o_hget(key, field)
  local e = ov(key)
  local v = e.f[field]
  if v == nil then
    if e.full then return nil end
    v = redis.call('HGET', key, field) or false
    e.f[field] = v
  end
  return v or nil
end

local function o_hgetall(key)
  local e = ov(key)
  if not e.full then
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do
      if e.f[flat[i]] == nil then e.f[flat[i]] = flat[i + 1] end
    end
    e.full = true
  end
  local t = {}
  for k, v in pairs(e.f) do if v then t[k] = v end end
  return t
end

local function o_hset(key, field, value)
  local e = ov(key)
  e.f[field] = value; e.set[field] = true; e.del[field] = nil
end

local function o_hdel(key, field)
  local e = ov(key)
  e.f[field] = false; e.del[field] = true; e.set[field] = nil
end

local function o_del(key)
  local e = ov(key)
  e.f, e.full, e.gone, e.set, e.del = {}, true, true, {}, {}
end

local function o_expire(key, ms) expiries[key] = ms end

local function rec_key(ns, id) return P .. ns .. ':' .. id end

local function o_exists(key)
  return next(o_hgetall(key)) ~= nil
end

-- The owner of an identifying value, through the overlay.
local function owner_of(ns, kind, value)
  local field = kind .. ':' .. value
  return o_hget(ix_key(P, ns, field), field)
end

local function touch(ns, id, created, changed)
  local key = rec_key(ns, id)
  local t = touched[key]
  if not t then
    t = {ns = ns, id = id, created = created, changed = {}}
    touched[key] = t
    table.insert(touched_order, key)
  end
  for _, hf in ipairs(changed) do
    if not list_contains(t.changed, hf) then table.insert(t.changed, hf) end
  end
end

-- Write the overlay: every touched record gets one version bump and one event per call.
local function commit()
  for _, key in ipairs(touched_order) do
    local t = touched[key]
    if o_exists(key) or t.created then
      local version = tostring(tonumber(o_hget(key, '_v') or '0') + 1)
      o_hset(key, '_v', version)
      o_hset(key, '_u', NOW)
      if t.created then o_hset(key, '_c', NOW) end
      t.version = version
    end
  end
  for key, e in pairs(Ov) do
    if e.gone then redis.call('DEL', key) end
    local args = {}
    for f in pairs(e.set) do table.insert(args, f); table.insert(args, e.f[f]) end
    if #args > 0 then hset_all(key, args) end
    if not e.gone then
      local dels = {}
      for f in pairs(e.del) do table.insert(dels, f) end
      if #dels > 0 then hdel_all(key, dels) end
    end
  end
  for key, ms in pairs(expiries) do
    if not Ov[key] or next(Ov[key].set) or not Ov[key].gone then
      redis.call('PEXPIRE', key, ms)
    end
  end
  for _, key in ipairs(touched_order) do
    local t = touched[key]
    if t.version then
      emit(P, ETYPE_OF[t.ns] .. '.upserted', PREFIX_OF[t.ns] .. t.id, t.version)
    end
  end
end

-- Apply one record op (see upsert.lua for its fields). Problems go to E.violations /
-- E.conflicts / E.mismatches; returns {ns, id, created} or nil (and 'notfound' when a target
-- is missing).
-- With `check`, only resolution and the stored-state checks run; nothing is staged.
local function apply_record(op, E, check)
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
    if not o_exists(rec_key(ns, op.target)) then return nil, 'notfound' end
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
  local types_key = P .. 'types:' .. ns
  local new_types = {}
  local bad = #E.violations
  for _, inf in ipairs(op.infer) do
    local stored = o_hget(types_key, inf[1])
    if not stored then
      new_types[inf[1]] = inf[2]
    elseif stored ~= inf[2] then
      table.insert(E.violations, {inf[3], 'type',
        'expected ' .. stored .. ' (the type this field was first stored with), got ' .. inf[2]})
    end
  end
  if created then
    for _, r in ipairs(op.required) do
      local v = op.set[r[1]] or (op.pending and op.pending[r[1]]) or (op.on_create and op.on_create[r[1]])
      if v == nil or v == 'null' then
        table.insert(E.violations, {r[2], 'required', 'required when the record is created'})
      end
    end
  end
  if check or conflicted or #E.violations > bad then return nil end

  -- The new state: the op's values, then the session buffer where the op sets nothing.
  local key = rec_key(ns, id)
  local old = created and {} or o_hgetall(key)
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
  if created then ov(key).full = true end
  for hf, v in pairs(writes) do o_hset(key, hf, v) end
  for _, hf in ipairs(dels) do o_hdel(key, hf) end
  for _, kv in ipairs(frees) do
    local field = kv[1] .. ':' .. kv[2]
    local ixk = ix_key(P, ns, field)
    if o_hget(ixk, field) == id then o_hdel(ixk, field) end
  end
  for _, kv in ipairs(claims) do
    local field = kv[1] .. ':' .. kv[2]
    o_hset(ix_key(P, ns, field), field, id)
  end
  for hf, t in pairs(new_types) do o_hset(types_key, hf, t) end
  if created or #changed > 0 then touch(ns, id, created, changed) end
  return {ns = ns, id = id, created = created, changed = changed}
end

-- Link a contact to a company (idempotent): the contact's `_co` list and the company's `_n`.
local function link(contact_id, company_id)
  local ckey, okey = rec_key('c', contact_id), rec_key('o', company_id)
  local raw = o_hget(ckey, '_co')
  local linked = raw and cjson.decode(raw) or {}
  if list_contains(linked, company_id) then return end
  table.insert(linked, company_id)
  o_hset(ckey, '_co', cjson.encode(linked))
  touch('c', contact_id, false, {'_co'})
  o_hset(okey, '_n', tostring(tonumber(o_hget(okey, '_n') or '0') + 1))
  touch('o', company_id, false, {'_n'})
end

-- The reply block of a record after commit: {id, created, changed, hgetall}.
local function record_block(ns, id, created)
  local key = rec_key(ns, id)
  local t = touched[key]
  local flat = {}
  for hf, v in pairs(o_hgetall(key)) do table.insert(flat, hf); table.insert(flat, v) end
  return {id, created and 1 or 0, t and t.changed or {}, flat}
end
