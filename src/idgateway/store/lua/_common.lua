-- Shared helpers, prepended to every script at load time (see store/_scripts.py).
-- P is the tenant key prefix "idgw:{tenant}:"; ns is "c" (contacts) or "o" (companies).

local function bucket(s)
  local h = 0
  for i = 1, #s do
    h = (h * 31 + string.byte(s, i)) % 65536
  end
  return h
end

local function ix_key(P, ns, field)
  return P .. ns .. 'x:' .. bucket(field)
end

local function ix_get(P, ns, kind, value)
  local field = kind .. ':' .. value
  return redis.call('HGET', ix_key(P, ns, field), field)
end

local function ix_set(P, ns, kind, value, id)
  local field = kind .. ':' .. value
  redis.call('HSET', ix_key(P, ns, field), field, id)
end

local function ix_del_if_owner(P, ns, kind, value, id)
  local field = kind .. ':' .. value
  local key = ix_key(P, ns, field)
  if redis.call('HGET', key, field) == id then
    redis.call('HDEL', key, field)
  end
end

-- The identifying values a record holds, as a set "kind\0value" -> {kind, value}.
-- `spec` is [[hfield, kind, is_list], ...]; `get(hfield)` returns the stored JSON text or nil.
local function id_values(spec, get)
  local out = {}
  for _, s in ipairs(spec) do
    local raw = get(s[1])
    if raw then
      local decoded = cjson.decode(raw)
      if s[3] == 1 then
        for _, v in ipairs(decoded) do out[s[2] .. '\0' .. v] = {s[2], v} end
      elseif type(decoded) == 'string' then
        out[s[2] .. '\0' .. decoded] = {s[2], decoded}
      end
    end
  end
  return out
end

-- HSET / HDEL in chunks: Lua's unpack() tops out near 8,000 values, and a script that errors
-- after a first write would leave that write behind.
local CHUNK = 500
local function hset_all(key, flat)
  for i = 1, #flat, 2 * CHUNK do
    redis.call('HSET', key, unpack(flat, i, math.min(i + 2 * CHUNK - 1, #flat)))
  end
end
local function hdel_all(key, fields)
  for i = 1, #fields, CHUNK do
    redis.call('HDEL', key, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
  end
end

local function list_contains(list, value)
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end

local function emit(P, etype, id, version)
  redis.call('XADD', P .. 'outbox', '*', 'type', etype, 'id', id, 'v', version)
end

local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- What a deleted record leaves for the vendors that still have to hear of it: its
-- identifiers and vendor refs, kept 30 days (SPEC §6: deletes use vendor refs).
local TOMBSTONE_SECONDS = 2592000
local function tombstone(P, full_id, old)
  local t = {id = full_id, version = tonumber(old['_v'] or '0') + 1, vendor_refs = {}}
  for _, hf in ipairs({'external_id', 'email', 'phone', 'facebook', 'twitter'}) do
    if old[hf] then t[hf] = cjson.decode(old[hf]) end
  end
  local has_refs = false
  for hf, v in pairs(old) do
    if string.sub(hf, 1, 2) == 'r.' then t.vendor_refs[string.sub(hf, 3)] = v; has_refs = true end
  end
  if not has_refs then t.vendor_refs = nil end
  redis.call('SET', P .. 'tomb:' .. full_id, cjson.encode(t), 'EX', TOMBSTONE_SECONDS)
end

local PREFIX_OF = {c = 'c_', o = 'co_'}
local ETYPE_OF = {c = 'contact', o = 'company'}
