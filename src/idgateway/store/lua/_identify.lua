-- One identify call (SPEC §4.1), applied all-or-nothing: shared by upsert (the API and the
-- dialects) and import_batch (one imported row), so an imported row is written exactly as
-- the same body posted to /v1/identify.
-- call = {records: [op, ...] (companies first), link, session?} (see upsert.lua)

-- Resolve and check every record of `call` against the stored state, the session's buffered
-- values applied; problems collect in E. Returns the results and the session key (nil
-- without a session), or nil, nil and the failure {status = 'notfound', what}.
local function resolve_call(ctx, call, spec, E, check)
  local sess = call.session
  local sk = sess and session_key(ctx, sess.id)
  if sk and not check and not session_usable(ctx, sk, sess.mode) then
    return nil, nil, {status = 'notfound', what = 's'}
  end
  local results = {}
  for i, op in ipairs(call.records) do
    if sk then
      local values, infer = buffered(ctx, sk, op.ns)
      op.pending = values
      for _, row in ipairs(infer) do table.insert(op.infer, row) end
    end
    local r, err = apply_record(ctx, op, spec[op.ns], E, check)
    if err == 'notfound' then return nil, nil, {status = 'notfound', what = op.ns} end
    results[i] = r
  end
  return results, sk
end

-- Write a resolved call without problems: link the contact to its company, bind the session
-- to the records (its buffer is spent), commit the overlay.
local function write_call(ctx, call, sk, results)
  if call.link and #results == 2 then link(ctx, results[2].id, results[1].id) end
  if sk then
    local sess = call.session
    for _, r in ipairs(results) do
      bind(ctx, sk, sess.id, r.ns, r.id, sess.ttl)
      clear_buffer(ctx, sk, r.ns)
    end
    touch_session(ctx, sk, sess.ttl)
  end
  commit(ctx)
end
