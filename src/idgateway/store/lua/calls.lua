-- calls: Groove widget calls on one session, in order, all-or-nothing (SPEC §4.2, §5.4).
-- Request (CallsRequest): {session, steps: [step, ...], spec: {c, o}, limits?}
--   step = {op = 'set', record}        setContact / setCompany (record: a record op)
--        | {op = 'identify', record}   identifyContact / identifyCompany
--        | {op = 'logout'}
--   With session.mode 'mint' and no steps the session is created (minting).
-- Reply (CallsReply): ok {session?: fields (absent once logged out), contact?, company?}
--   | invalid | conflict | mismatch | notfound {what = 's'} | limited
local function fn_calls(keys, args)
  local P, req = keys[1], request(args)
  local now = time_us()
  local hit = rate_check(P, req.limits, now)
  if hit then return limited_reply(hit) end
  local ctx = new_ctx(P, now)
  local E = {violations = {}, conflicts = {}, mismatches = {}}
  local sid, ttl = req.session.id, req.session.ttl
  local sk = session_key(ctx, sid)
  if not session_usable(ctx, sk, req.session.mode) then
    return reply({status = 'notfound', what = 's'})
  end
  local alive = true

  for _, step in ipairs(req.steps) do
    if step.op == 'logout' then
      logout(ctx, sk, sid)
      alive = false
    else
      alive = true
      local op = step.record
      local ns = op.ns
      local spec = req.spec[ns]
      local bound = bound_record(ctx, sk, ns)
      if step.op == 'set' then
        if bound then
          op.target = bound
          apply_record(ctx, op, spec, E, false)
        else
          buffer_values(ctx, sk, ns, op, E)  -- anonymous: kept in the session
        end
      else -- identify
        local l = op.lookups[1]
        local owner = owner_of(ctx, ns, l[1], l[2])
        if not (bound and owner == bound) then
          local values, infer = buffered(ctx, sk, ns)
          if owner then
            -- A found record keeps the value it was identified by: buffered values of the
            -- same identifier namespace (email and secondary_emails share one) do not apply.
            for _, s in ipairs(spec) do
              if s[2] == l[1] then values[s[1]] = nil end
            end
          end
          op.pending = values
          for _, row in ipairs(infer) do table.insert(op.infer, row) end
          local r = apply_record(ctx, op, spec, E, false)
          if r then
            bind(ctx, sk, sid, ns, r.id, ttl)
            clear_buffer(ctx, sk, ns)
          end
        end
        local ct, co = o_hget(ctx, sk, '_ct'), o_hget(ctx, sk, '_co')
        if ct and co and #E.violations + #E.conflicts + #E.mismatches == 0 then
          link(ctx, ct, co)
        end
      end
    end
    local bad = problems_reply(E)
    if bad then return bad end
  end

  if alive then touch_session(ctx, sk, ttl) end
  commit(ctx)
  local out = {status = 'ok'}
  if alive then
    out.session = session_reply(ctx, sk)
    local ct, co = o_hget(ctx, sk, '_ct'), o_hget(ctx, sk, '_co')
    if ct then
      local t = ctx.touched[rec_key(ctx, 'c', ct)]
      out.contact = record_reply(ctx, 'c', ct, t and t.created)
    end
    if co then
      local t = ctx.touched[rec_key(ctx, 'o', co)]
      out.company = record_reply(ctx, 'o', co, t and t.created)
    end
  end
  return reply(out)
end
