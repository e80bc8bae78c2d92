-- import_batch: one batch of `idgateway import` rows (SPEC §9) and the import's checkpoint.
-- Request (ImportBatchRequest): {file, expect, rows: [row, ...], spec: {c?, o?}, mark}
--   row  = {line, records: [op, ...] (companies first), link, session?}: one identify body,
--          as upsert takes it
--   mark = the checkpoint after this batch: {offset, line, sha, batch_offset, batch_line,
--          rows, rejected, pre, done?, run}; `rows` counts every row of the batch, `rejected`
--          those the client refused before sending (their reasons are in `pre`, opaque)
-- Each row is applied on its own, all-or-nothing, exactly as upsert applies one call (minus
-- rate limits); a refused row writes nothing and the others go on. The checkpoint hash
-- P..'import:'..file moves in the same step, and only from the offset the client read
-- (`expect`): a batch is imported exactly once, even when a killed run is resumed, or two
-- runs race on one file (the second gets `stale` and writes nothing).
-- Reply (ImportBatchReply): ok {results: {line: result}} | stale {offset}
--   result = {status = created | updated | unchanged} | invalid | conflict | mismatch | notfound

local IMPORT_TTL_SECONDS = 2592000  -- a checkpoint is kept 30 days after its last batch

local function import_row(P, row, spec, now)
  local ctx = new_ctx(P, now)
  local E = {violations = {}, conflicts = {}, mismatches = {}}
  local results, sk, failure = resolve_call(ctx, row, spec, E, false)
  if failure then return failure end
  local problem = problems_of(E)
  if problem then return problem end
  write_call(ctx, row, sk, results)
  if results[#results].created then return {status = 'created'} end
  if next(ctx.touched) then return {status = 'updated'} end
  return {status = 'unchanged'}
end

local function fn_import_batch(keys, args)
  local P, req = keys[1], request(args)
  local ck = P .. 'import:' .. req.file
  local at = tonumber(redis.call('HGET', ck, 'offset') or '0')
  if at ~= req.expect then return reply({status = 'stale', offset = at}) end
  local now = time_us()  -- one clock for the batch: its rows are written together
  local results, failures = {}, {}
  local counts = {created = 0, updated = 0, unchanged = 0, rejected = req.mark.rejected}
  for _, row in ipairs(req.rows) do
    local r = import_row(P, row, req.spec, now)
    local line = tostring(row.line)
    results[line] = r
    if counts[r.status] then
      counts[r.status] = counts[r.status] + 1
    else
      counts.rejected = counts.rejected + 1
      failures[line] = r
    end
  end
  local m = req.mark
  local function int(n) return string.format('%.0f', n) end
  redis.call('HSET', ck, 'offset', int(m.offset), 'line', int(m.line), 'sha', m.sha,
    'batch_offset', int(m.batch_offset), 'batch_line', int(m.batch_line), 'pre', m.pre,
    'failures', cjson.encode(failures), 'done', m.done and '1' or '0', 'run', m.run,
    'at', int(now / 1000))
  redis.call('HINCRBY', ck, 'rows', m.rows)
  for name, n in pairs(counts) do redis.call('HINCRBY', ck, name, n) end
  redis.call('EXPIRE', ck, IMPORT_TTL_SECONDS)
  return reply({status = 'ok', results = results})
end
