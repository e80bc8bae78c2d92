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
  local results, sk, failure = resolve_call(ctx, req, req.spec, E, req.check)
  if failure then return reply(failure) end
  if req.check then
    if #E.violations > 0 then return reply({status = 'invalid', violations = E.violations}) end
    return reply({status = 'ok'})
  end
  local bad = problems_reply(E)
  if bad then return bad end
  write_call(ctx, req, sk, results)
  local records = {}
  for i, r in ipairs(results) do records[i] = record_reply(ctx, r.ns, r.id, r.created) end
  return reply({status = 'ok', records = records})
end
