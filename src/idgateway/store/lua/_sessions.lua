-- Browser sessions (SPEC §4.2). Needs _common.lua and _records.lua.
-- A session is the hash P..'s:'..id:
--   _t        last call (epoch ms): the session exists
--   _ct, _co  bound contact / company id
--   c.<hf>    buffered contact value (JSON text; 'null' removes the field on flush)
--   o.<hf>    buffered company value
--   tc.<hf>, to.<hf>  type of a buffered value of an inferred field (checked again on flush)
-- P..'cs:'..contact_id is the reverse index: session id -> '1', so deleting or merging a
-- contact finds its sessions.

local BUF = {c = 'c.', o = 'o.'}
local TYP = {c = 'tc.', o = 'to.'}
local BOUND = {c = '_ct', o = '_co'}

local function session_key(sid) return P .. 's:' .. sid end

-- The buffer of one namespace as {hf -> json} and its inferred types as op.infer rows.
local function buffered(sk, ns)
  local values, infer = {}, {}
  local bp, tp = BUF[ns], TYP[ns]
  for f, v in pairs(o_hgetall(sk)) do
    if string.sub(f, 1, #bp) == bp then
      values[string.sub(f, #bp + 1)] = v
    elseif string.sub(f, 1, #tp) == tp then
      local hf = string.sub(f, #tp + 1)
      table.insert(infer, {hf, v, '$.session.pending.' .. hf})
    end
  end
  return values, infer
end

local function clear_buffer(sk, ns)
  local bp, tp = BUF[ns], TYP[ns]
  for f in pairs(o_hgetall(sk)) do
    if string.sub(f, 1, #bp) == bp or string.sub(f, 1, #tp) == tp then o_hdel(sk, f) end
  end
end

-- Bind the session to a record; a contact binding is mirrored in the reverse index.
local function bind(sk, sid, ns, id, ttl)
  local old = o_hget(sk, BOUND[ns])
  if old == id then return end
  if ns == 'c' then
    if old then o_hdel(P .. 'cs:' .. old, sid) end
    o_hset(P .. 'cs:' .. id, sid, '1')
    o_expire(P .. 'cs:' .. id, ttl)
  end
  o_hset(sk, BOUND[ns], id)
end

-- The bound record of a namespace, or nil when unbound or the record is gone.
local function bound_record(sk, ns)
  local id = o_hget(sk, BOUND[ns])
  if id and not o_exists(rec_key(ns, id)) then
    o_hdel(sk, BOUND[ns])
    return nil
  end
  return id
end

-- Every call slides the TTL of the session and of its contact's reverse index, so the index
-- never expires before a session it lists.
local function touch_session(sk, ttl)
  o_hset(sk, '_t', NOW)
  o_expire(sk, ttl)
  local ct = o_hget(sk, '_ct')
  if ct then o_expire(P .. 'cs:' .. ct, ttl) end
end

-- Whether a call may use the session (SPEC §4.2). `mode`: 'minted' (an `s_` id: it must
-- exist, as only minting creates one), 'named' (a server-named id: its first call starts it),
-- 'mint' (create it now: it must not exist yet).
local function session_usable(sk, mode)
  local exists = o_hget(sk, '_t') ~= nil
  if mode == 'minted' then return exists end
  if mode == 'mint' then return not exists end
  return true
end

local function logout(sk, sid)
  local ct = o_hget(sk, '_ct')
  if ct then o_hdel(P .. 'cs:' .. ct, sid) end
  o_del(sk)
end
