-- Browser sessions (SPEC §4.2). A session is the hash P..'s:'..id:
--   _t        last call (epoch ms): the session exists
--   _ct, _co  bound contact / company id
--   c.<hf>    buffered contact value (JSON text; 'null' removes the field on flush)
--   o.<hf>    buffered company value
--   tc.<hf>, to.<hf>  type of a buffered value of an inferred field (checked again on flush)
-- P..'cs:'..contact_id is the reverse index: session id -> '1', so erasing or merging a
-- contact finds its sessions.
-- A session reference in a request (SessionWire): {id, ttl (ms), mode}; mode is 'minted' (an
-- `s_` id: it must exist, only minting creates one), 'named' (a server-named id: its first
-- call starts it) or 'mint' (create it now: it must not exist yet).

local BUF = {c = 'c.', o = 'o.'}
local TYP = {c = 'tc.', o = 'to.'}
local BOUND = {c = '_ct', o = '_co'}

local function session_key(ctx, sid) return ctx.P .. 's:' .. sid end

local function session_usable(ctx, sk, mode)
  local exists = o_hget(ctx, sk, '_t') ~= nil
  if mode == 'minted' then return exists end
  if mode == 'mint' then return not exists end
  return true
end

-- The buffer of one namespace as {hf -> json} and its inferred types as op.infer rows.
local function buffered(ctx, sk, ns)
  local values, infer = {}, {}
  local bp, tp = BUF[ns], TYP[ns]
  for f, v in pairs(o_hgetall(ctx, sk)) do
    if string.sub(f, 1, #bp) == bp then
      values[string.sub(f, #bp + 1)] = v
    elseif string.sub(f, 1, #tp) == tp then
      local hf = string.sub(f, #tp + 1)
      table.insert(infer, {hf, v, '$.session.pending.' .. hf})
    end
  end
  return values, infer
end

local function clear_buffer(ctx, sk, ns)
  local bp, tp = BUF[ns], TYP[ns]
  for f in pairs(o_hgetall(ctx, sk)) do
    if string.sub(f, 1, #bp) == bp or string.sub(f, 1, #tp) == tp then o_hdel(ctx, sk, f) end
  end
end

-- Buffer a set call made while anonymous. Inferred types are checked now and again on flush.
local function buffer_values(ctx, sk, ns, op, E)
  for _, inf in ipairs(op.infer) do
    local stored = o_hget(ctx, ctx.P .. 'types:' .. ns, inf[1])
    if stored and stored ~= inf[2] then
      table.insert(E.violations, {inf[3], 'type', 'expected ' .. stored ..
        ' (the type this field was first stored with), got ' .. inf[2]})
    end
    o_hset(ctx, sk, TYP[ns] .. inf[1], inf[2])
  end
  for hf, v in pairs(op.set) do o_hset(ctx, sk, BUF[ns] .. hf, v) end
  for _, hf in ipairs(op.unset) do o_hset(ctx, sk, BUF[ns] .. hf, 'null') end
end

-- Bind the session to a record; a contact binding is mirrored in the reverse index.
local function bind(ctx, sk, sid, ns, id, ttl)
  local old = o_hget(ctx, sk, BOUND[ns])
  if old == id then return end
  if ns == 'c' then
    if old then o_hdel(ctx, ctx.P .. 'cs:' .. old, sid) end
    o_hset(ctx, ctx.P .. 'cs:' .. id, sid, '1')
    o_expire(ctx, ctx.P .. 'cs:' .. id, ttl)
  end
  o_hset(ctx, sk, BOUND[ns], id)
end

-- The bound record of a namespace, or nil when unbound or the record is gone.
local function bound_record(ctx, sk, ns)
  local id = o_hget(ctx, sk, BOUND[ns])
  if id and not o_exists(ctx, rec_key(ctx, ns, id)) then
    o_hdel(ctx, sk, BOUND[ns])
    return nil
  end
  return id
end

-- Every call slides the TTL of the session and of its contact's reverse index, so the index
-- never expires before a session it lists.
local function touch_session(ctx, sk, ttl)
  o_hset(ctx, sk, '_t', ctx.now)
  o_expire(ctx, sk, ttl)
  local ct = o_hget(ctx, sk, '_ct')
  if ct then o_expire(ctx, ctx.P .. 'cs:' .. ct, ttl) end
end

local function logout(ctx, sk, sid)
  local ct = o_hget(ctx, sk, '_ct')
  if ct then o_hdel(ctx, ctx.P .. 'cs:' .. ct, sid) end
  o_del(ctx, sk)
end

-- The session as a reply carries it: its fields, or nil once logged out.
local function session_reply(ctx, sk)
  return o_hgetall(ctx, sk)
end
