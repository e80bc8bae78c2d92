-- upsert: identify, group and the dialects' identify calls (SPEC §4.1, §5.2, §5.5).
-- Request (UpsertRequest): {records: [op, ...] (companies first, so the contact can be linked
--   to them), spec: {c?, o?}, link, check, session?, limits?}
--   check: resolve and run the stored-state checks only; never writes
--   session: its buffer is applied to the records (the call's own values win); it is bound
-- Reply (UpsertReply): ok {records: [record, ...]} | invalid | conflict | mismatch |
--   notfound {what} | limited
local function fn_upsert(keys, args)
  local P, req = keys[1], request(args)
  local now = time_us()
  local hit = rate_check(P, req.limits, now)
  if hit then return limited_reply(hit) end
  local ctx = new_ctx(P, now)
  local E = {violations = {}, conflicts = {}, mismatches = {}}
  local results = {}
  local sess = req.session
  local sk = sess and session_key(ctx, sess.id)
  if sk and not req.check and not session_usable(ctx, sk, sess.mode) then
    return reply({status = 'notfound', what = 's'})
  end
  for i, op in ipairs(req.records) do
    if sk then
      local values, infer = buffered(ctx, sk, op.ns)
      op.pending = values
      for _, row in ipairs(infer) do table.insert(op.infer, row) end
    end
    local r, err = apply_record(ctx, op, req.spec[op.ns], E, req.check)
    if err == 'notfound' then return reply({status = 'notfound', what = op.ns}) end
    results[i] = r
  end
  if req.check then
    if #E.violations > 0 then return reply({status = 'invalid', violations = E.violations}) end
    return reply({status = 'ok'})
  end
  local bad = problems_reply(E)
  if bad then return bad end

  if req.link and #results == 2 then link(ctx, results[2].id, results[1].id) end
  if sk then
    for _, r in ipairs(results) do
      bind(ctx, sk, sess.id, r.ns, r.id, sess.ttl)
      clear_buffer(ctx, sk, r.ns)
    end
    touch_session(ctx, sk, sess.ttl)
  end
  commit(ctx)
  local records = {}
  for i, r in ipairs(results) do records[i] = record_reply(ctx, r.ns, r.id, r.created) end
  return reply({status = 'ok', records = records})
end
