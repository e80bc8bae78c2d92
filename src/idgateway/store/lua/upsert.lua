-- Identify: resolve, check, write, append outbox events; optionally bind a session.
-- KEYS[1]: the tenant's outbox stream (routes the call to the tenant's slot)
-- ARGV[1]: key prefix; ARGV[2]: JSON request
--   {now, link, check?, session?: {id, ttl}, records: [op, ...]}
--   records: companies first, so the contact can be linked to them
--   op = {ns, new_id, target?, lookups: [[kind, value, path]], set: {hfield: json},
--         unset: [hfield], tags_add?: [tag], infer: [[hfield, type, path]],
--         required: [[hfield, path]], spec: [[hfield, kind, is_list]],
--         on_create?: {hfield: json} set only when the record is created}
--   check: resolve and run the stored-state checks only; never writes
--   session: {id, ttl, mode}: apply the session's buffer to the records (the call's own values
--   win), bind it; mode as in calls.lua
-- Reply: {'ok', block...} with block = {id, created, changed, hgetall}
--        {'conflict', [[path, kind, value, owner_id]]} | {'invalid', [[path, code, message]]}
--        {'mismatch', [[path, the record's external_id, record id]]} (SPEC §4.1)
--        {'notfound', ns}
local E = {violations = {}, conflicts = {}, mismatches = {}}
local results = {}
local sess = REQ.session
local sk = sess and session_key(sess.id)
if sk and not REQ.check and not session_usable(sk, sess.mode) then return {'notfound', 's'} end

for i, op in ipairs(REQ.records) do
  if sk then
    local values, infer = buffered(sk, op.ns)
    op.pending = values
    for _, row in ipairs(infer) do table.insert(op.infer, row) end
  end
  local r, err = apply_record(op, E, REQ.check)
  if err == 'notfound' then return {'notfound', op.ns} end
  results[i] = r
end
if REQ.check or #E.violations > 0 then return {'invalid', E.violations} end
if #E.conflicts > 0 then return {'conflict', E.conflicts} end
if #E.mismatches > 0 then return {'mismatch', E.mismatches} end

if REQ.link and #results == 2 then link(results[2].id, results[1].id) end
if sk then
  for _, r in ipairs(results) do
    bind(sk, sess.id, r.ns, r.id, sess.ttl)
    clear_buffer(sk, r.ns)
  end
  touch_session(sk, sess.ttl)
end
commit()
local reply = {'ok'}
for i, r in ipairs(results) do reply[i + 1] = record_block(r.ns, r.id, r.created) end
return reply
