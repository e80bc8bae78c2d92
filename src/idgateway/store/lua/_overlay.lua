-- Record writes through an overlay (a per-call context): reads go through to Redis once and
-- are cached, writes stay in the overlay until commit(). A call can therefore run several
-- steps (identify, flush a session buffer, link a company, ...) where each sees the previous
-- ones, and write nothing at all when a later step fails: all-or-nothing without MULTI.

local function new_ctx(P, now)
  return {
    P = P,
    now = tostring(math.floor(now / 1000)),  -- epoch ms, as records store it
    ov = {}, touched = {}, order = {}, expiries = {},
  }
end

local function ov(ctx, key)
  local e = ctx.ov[key]
  if not e then
    e = {f = {}, full = false, gone = false, set = {}, del = {}}
    ctx.ov[key] = e
  end
  return e
end

local function o_hget(ctx, key, field)
  local e = ov(ctx, key)
  local v = e.f[field]
  if v == nil then
    if e.full then return nil end
    v = redis.call('HGET', key, field) or false
    e.f[field] = v
  end
  return v or nil
end

-- Read several fields of one hash in one HMGET (those not read yet), into the overlay.
local function o_prefetch(ctx, key, fields)
  local e = ov(ctx, key)
  if e.full then return end
  local missing = {}
  for _, f in ipairs(fields) do
    if e.f[f] == nil then table.insert(missing, f) end
  end
  if #missing == 0 then return end
  local values = redis.call('HMGET', key, unpack(missing))
  for i, f in ipairs(missing) do e.f[f] = values[i] or false end
end

local function o_hgetall(ctx, key)
  local e = ov(ctx, key)
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

local function o_hset(ctx, key, field, value)
  local e = ov(ctx, key)
  e.f[field] = value; e.set[field] = true; e.del[field] = nil
end

local function o_hdel(ctx, key, field)
  local e = ov(ctx, key)
  e.f[field] = false; e.del[field] = true; e.set[field] = nil
end

local function o_del(ctx, key)
  local e = ov(ctx, key)
  e.f, e.full, e.gone, e.set, e.del = {}, true, true, {}, {}
end

local function o_expire(ctx, key, ms) ctx.expiries[key] = ms end

local function o_exists(ctx, key)
  return next(o_hgetall(ctx, key)) ~= nil
end

local function rec_key(ctx, ns, id) return ctx.P .. ns .. ':' .. id end

-- The owner of an identifying value, through the overlay.
local function owner_of(ctx, ns, kind, value)
  local field = kind .. ':' .. value
  return o_hget(ctx, ix_key(ctx.P, ns, field), field)
end

-- A record this call changed: it gets one version bump and one event at commit.
local function touch(ctx, ns, id, created, changed)
  local key = rec_key(ctx, ns, id)
  local t = ctx.touched[key]
  if not t then
    t = {ns = ns, id = id, created = created, changed = {}}
    ctx.touched[key] = t
    table.insert(ctx.order, key)
  end
  for _, hf in ipairs(changed) do t.changed[hf] = 1 end
end

-- Write the overlay: every touched record gets one version bump and one event per call.
local function commit(ctx)
  for _, key in ipairs(ctx.order) do
    local t = ctx.touched[key]
    if o_exists(ctx, key) or t.created then
      local version = tostring(tonumber(o_hget(ctx, key, '_v') or '0') + 1)
      o_hset(ctx, key, '_v', version)
      o_hset(ctx, key, '_u', ctx.now)
      if t.created then o_hset(ctx, key, '_c', ctx.now) end
      t.version = version
    end
  end
  for key, e in pairs(ctx.ov) do
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
  for key, ms in pairs(ctx.expiries) do
    local e = ctx.ov[key]
    if not e or next(e.set) or not e.gone then redis.call('PEXPIRE', key, ms) end
  end
  for _, key in ipairs(ctx.order) do
    local t = ctx.touched[key]
    if t.version then
      emit(ctx.P, ETYPE_OF[t.ns] .. '.upserted', PREFIX_OF[t.ns] .. t.id, t.version)
    end
  end
end

-- A record as a reply carries it: {id, created, changed: {hfield: 1}, fields: {hfield: value}}.
local function record_reply(ctx, ns, id, created)
  local key = rec_key(ctx, ns, id)
  local t = ctx.touched[key]
  return {id = id, created = created and true or false,
          changed = t and t.changed or {}, fields = o_hgetall(ctx, key)}
end
