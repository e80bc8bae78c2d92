-- The idgateway function library: prelude (helpers every function shares).
--
-- Conventions of every function in this library (documented here once):
--   * Called as `FCALL <name> 1 <P> <request>`. P = KEYS[1] is the tenant's key prefix
--     "idgw:{<tenant>}:"; the braces make the tenant id the Redis Cluster hash tag. Every key a
--     function touches is P followed by a suffix from the key map (store/_keys.py), so a call
--     touches exactly one slot.
--   * The request (ARGV[1]) is one JSON object; the reply is one JSON object whose `status`
--     says what happened. Both are declared once, as msgspec Structs, in store/_wire.py.
--   * A reply never holds an empty JSON array: cjson encodes an empty table as `{}`, so a
--     collection that may be empty is an object keyed by id, or left out.
--   * Time is the Redis server's (TIME): processes on several machines need no shared clock.
--   * Functions keep no state between calls: per-call state lives in a context table (ctx).

local PREFIX_OF = {c = 'c_', o = 'co_'}
local ETYPE_OF = {c = 'contact', o = 'company'}

local function time_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function request(args)
  return cjson.decode(args[1])
end

local function reply(t)
  return cjson.encode(t)
end

-- "c_<ulid>" / "co_<ulid>" -> namespace, bare id
local function split_record(rec)
  if string.sub(rec, 1, 3) == 'co_' then return 'o', string.sub(rec, 4) end
  return 'c', string.sub(rec, 3)
end

-- Index bucket of an index field; store/_keys.py computes the very same number.
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

local function list_contains(list, value)
  for _, v in ipairs(list) do
    if v == value then return true end
  end
  return false
end

local function hash_to_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- HSET / HDEL in chunks: Lua's unpack() tops out near 8,000 values, and a call that errors
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

local function emit(P, etype, id, version)
  redis.call('XADD', P .. 'outbox', '*', 'type', etype, 'id', id, 'v', version)
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

local function ix_del_if_owner(P, ns, kind, value, id)
  local field = kind .. ':' .. value
  local key = ix_key(P, ns, field)
  if redis.call('HGET', key, field) == id then redis.call('HDEL', key, field) end
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

-- A contact leaves the companies it was linked to (erased, or merged into one already
-- linked): each loses a member, with one version bump and one event.
local function leave_company(P, company_id, now_ms)
  local key = P .. 'o:' .. company_id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, '_n', -1)
    redis.call('HSET', key, '_u', now_ms)
    emit(P, 'company.upserted', 'co_' .. company_id, redis.call('HINCRBY', key, '_v', 1))
  end
end

-- Rate limits (SPEC §5.1): GCRA over the Redis server's clock, so every gateway process
-- shares one limit. `limits` = [{key, name, quota, window_ms, burst}]; key is a suffix of P.
-- Every limit is checked before any is spent: a refused call costs nothing.
-- `now` is the call's time (µs). Returns nil when allowed, else {name, retry_ms, quota,
-- window_ms}.
local function rate_check(P, limits, now)
  if not limits or #limits == 0 then return nil end
  local next_tats = {}
  for i, l in ipairs(limits) do
    local interval = l.window_ms * 1000 / l.quota  -- µs between requests at the steady rate
    local tolerance = (l.burst - 1) * interval
    local key = P .. 'rl:' .. l.key
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    if tat - now > tolerance then
      return {l.name, math.ceil((tat - now - tolerance) / 1000), l.quota, l.window_ms}
    end
    next_tats[i] = {key, tat + interval}
  end
  for _, t in ipairs(next_tats) do
    redis.call('SET', t[1], string.format('%.0f', t[2]), 'PX', math.ceil((t[2] - now) / 1000) + 1)
  end
  return nil
end

local function limited_reply(hit)
  return reply({status = 'limited', limit = hit[1], retry_ms = hit[2], quota = hit[3],
                window_ms = hit[4]})
end
