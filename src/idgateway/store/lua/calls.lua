-- A list of Groove widget calls on one session, in order, all-or-nothing (SPEC §4.2, §5.4).
-- KEYS[1]: outbox; ARGV[1]: key prefix; ARGV[2]: JSON request
--   {now, session: {id, ttl, mode}, steps: [step, ...]}
--   mode: 'minted' | 'named' | 'mint' (see session_usable); with 'mint' and no steps the
--   session is created
--   step = {op = 'set', ns, record op fields}            setContact / setCompany
--        | {op = 'identify', ns, record op fields}       identifyContact / identifyCompany
--        | {op = 'logout'}
-- Reply: {'ok', session hgetall | false, contact block | false, company block | false}
--        {'notfound', 's'} when the session may not be used; 'invalid' / 'conflict' as upsert.lua
local E = {violations = {}, conflicts = {}, mismatches = {}}
local sid, ttl = REQ.session.id, REQ.session.ttl
local sk = session_key(sid)
local alive = true
if not session_usable(sk, REQ.session.mode) then return {'notfound', 's'} end

for _, step in ipairs(REQ.steps) do
  if step.op == 'logout' then
    logout(sk, sid)
    alive = false
  else
    alive = true
    local ns = step.ns
    local bound = bound_record(sk, ns)
    if step.op == 'set' then
      if bound then
        step.target = bound
        apply_record(step, E, false)
      else
        -- Anonymous: buffer. Inferred types are checked now and again on flush.
        for _, inf in ipairs(step.infer) do
          local stored = o_hget(P .. 'types:' .. ns, inf[1])
          if stored and stored ~= inf[2] then
            table.insert(E.violations, {inf[3], 'type', 'expected ' .. stored ..
              ' (the type this field was first stored with), got ' .. inf[2]})
          end
          o_hset(sk, TYP[ns] .. inf[1], inf[2])
        end
        for hf, v in pairs(step.set) do o_hset(sk, BUF[ns] .. hf, v) end
        for _, hf in ipairs(step.unset) do o_hset(sk, BUF[ns] .. hf, 'null') end
      end
    else -- identify
      local l = step.lookups[1]
      local owner = owner_of(ns, l[1], l[2])
      if not (bound and owner == bound) then
        local values, infer = buffered(sk, ns)
        if owner then
          -- A found record keeps the value it was identified by: buffered values of the same
          -- identifier namespace (email and secondary_emails share one) do not apply to it.
          for _, s in ipairs(step.spec) do
            if s[2] == l[1] then values[s[1]] = nil end
          end
        end
        step.pending = values
        for _, row in ipairs(infer) do table.insert(step.infer, row) end
        local r = apply_record(step, E, false)
        if r then
          bind(sk, sid, ns, r.id, ttl)
          clear_buffer(sk, ns)
        end
      end
      local ct, co = o_hget(sk, '_ct'), o_hget(sk, '_co')
      if ct and co and #E.violations == 0 and #E.conflicts == 0 and #E.mismatches == 0 then link(ct, co) end
    end
  end
  if #E.violations > 0 then return {'invalid', E.violations} end
  if #E.conflicts > 0 then return {'conflict', E.conflicts} end
  if #E.mismatches > 0 then return {'mismatch', E.mismatches} end
end

if alive then touch_session(sk, ttl) end
commit()
local function block(ns)
  local id = alive and o_hget(sk, BOUND[ns])
  if not id then return false end
  return record_block(ns, id, touched[rec_key(ns, id)] and touched[rec_key(ns, id)].created)
end
local flat = false
if alive then
  flat = {}
  for f, v in pairs(o_hgetall(sk)) do table.insert(flat, f); table.insert(flat, v) end
end
return {'ok', flat, block('c'), block('o')}
