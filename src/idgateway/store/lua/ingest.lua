-- ingest: a request of the Segment-compatible source, each event applied on its own (SPEC §5.8).
-- Request (IngestRequest): {events: [event, ...], spec: {c, o}, dedup_s, keep_ms, keep_max,
--   limits?}
--   event = {kind, event (JSON text as received), mid?, records?, link?, session?, prev?,
--            problem?}
--     kind 'upsert': records (companies first) resolved and written as upsert does; the
--                    session, when given, applied and bound
--          'set':    one contact op on a session: to its bound contact, else buffered
--          'group':  one company op, bound to the session and linked to its contact
--          'alias':  one contact op; when a contact holds `prev` (the previousId as an
--                    external id) it joins the lookups (the same contact, or a conflict),
--                    else `session` (the previousId's) is applied and bound
--          'reject': nothing to apply; `problem` is kept as the rejection
--   Every event has its own overlay (ctx): one that fails writes nothing but its rejection,
--   and the events after it still apply. `mid` is the event's messageId: one seen in the last
--   dedup_s seconds (as P..'m:'..mid) is skipped. Rejections go to the stream P..'rej' (`p`
--   the problem JSON, `e` the event), trimmed to keep_ms and about keep_max entries.
-- Reply (IngestReply): ok {outcomes: one INGEST character per event} | limited

local function has_problems(E)
  return #E.violations + #E.conflicts + #E.mismatches > 0
end

local function ingest_upsert(ctx, records, spec, linked, sess, E)
  local sk = sess and session_key(ctx, sess.id)
  local results = {}
  for i, op in ipairs(records) do
    if sk then
      local values, infer = buffered(ctx, sk, op.ns)
      op.pending = values
      for _, row in ipairs(infer) do table.insert(op.infer, row) end
    end
    results[i] = apply_record(ctx, op, spec[op.ns], E, false)
  end
  if has_problems(E) then return nil end
  if linked and #results == 2 then link(ctx, results[2].id, results[1].id) end
  if sk then
    for _, r in ipairs(results) do
      bind(ctx, sk, sess.id, r.ns, r.id, sess.ttl)
      clear_buffer(ctx, sk, r.ns)
    end
    -- SPEC §4.2: a session bound to a contact and a company links them (a group call made
    -- while anonymous, then the identify).
    local ct, co = bound_record(ctx, sk, 'c'), bound_record(ctx, sk, 'o')
    if ct and co then link(ctx, ct, co) end
    touch_session(ctx, sk, sess.ttl)
  end
  return results[#results]
end

-- Apply one event through ctx; the outcome when it applied, nil when E holds problems.
local function ingest_event(ctx, ev, spec, E)
  local main
  if ev.kind == 'upsert' then
    main = ingest_upsert(ctx, ev.records, spec, ev.link, ev.session, E)
  elseif ev.kind == 'alias' then
    local op = ev.records[1]
    if ev.prev and owner_of(ctx, 'c', ev.prev[1], ev.prev[2]) then
      table.insert(op.lookups, ev.prev)
      main = ingest_upsert(ctx, {op}, spec, false, nil, E)
    else
      main = ingest_upsert(ctx, {op}, spec, false, ev.session, E)
    end
  elseif ev.kind == 'set' then
    local sess, op = ev.session, ev.records[1]
    local sk = session_key(ctx, sess.id)
    local bound = bound_record(ctx, sk, op.ns)
    if bound then
      op.target = bound
      main = apply_record(ctx, op, spec[op.ns], E, false)
    else
      buffer_values(ctx, sk, op.ns, op, E)  -- anonymous: kept in the session
    end
    if has_problems(E) then return nil end
    touch_session(ctx, sk, sess.ttl)
    if not bound then return INGEST.BUFFERED end
  elseif ev.kind == 'group' then
    local sess, op = ev.session, ev.records[1]
    local sk = session_key(ctx, sess.id)
    main = apply_record(ctx, op, spec[op.ns], E, false)
    if not main then return nil end
    bind(ctx, sk, sess.id, 'o', main.id, sess.ttl)
    local ct = bound_record(ctx, sk, 'c')
    if ct then link(ctx, ct, main.id) end
    touch_session(ctx, sk, sess.ttl)
  end
  if not main then return nil end
  if main.created then return INGEST.CREATED end
  if #ctx.order > 0 then return INGEST.UPDATED end
  return INGEST.UNCHANGED
end

local function keep_rejection(P, req, now_ms, event, problem)
  local key = P .. 'rej'
  local oldest = string.format('%.0f', now_ms - req.keep_ms)
  redis.call('XADD', key, 'MINID', '~', oldest, '*', 'p', problem, 'e', event)
  redis.call('XTRIM', key, 'MAXLEN', '~', req.keep_max)
  redis.call('PEXPIRE', key, req.keep_ms)
end

local function fn_ingest(keys, args)
  local P, req = keys[1], request(args)
  local now = time_us()
  local hit = rate_check(P, req.limits, now)
  if hit then return limited_reply(hit) end
  local out, seen = {}, {}
  for i, ev in ipairs(req.events) do
    local mk = ev.mid and (P .. 'm:' .. ev.mid)
    if mk and (seen[mk] or redis.call('EXISTS', mk) == 1) then
      out[i] = INGEST.DUPLICATE
    else
      local ctx = new_ctx(P, now)
      local problem
      if ev.kind == 'reject' then
        problem, out[i] = ev.problem, INGEST.REJECTED
      else
        local E = {violations = {}, conflicts = {}, mismatches = {}}
        local outcome = ingest_event(ctx, ev, req.spec, E)
        if outcome then
          commit(ctx)
          out[i] = outcome
        else
          problem = problems_reply(E)
          out[i] = #E.violations > 0 and INGEST.INVALID
            or #E.conflicts > 0 and INGEST.CONFLICT or INGEST.MISMATCH
        end
      end
      if problem then keep_rejection(P, req, tonumber(ctx.now), ev.event, problem) end
      if mk then
        seen[mk] = true
        redis.call('SET', mk, '1', 'EX', req.dedup_s)
      end
    end
  end
  return reply({status = 'ok', outcomes = table.concat(out)})
end
