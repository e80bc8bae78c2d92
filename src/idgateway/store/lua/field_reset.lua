-- field_reset: forget the type an inferred custom field was fixed with (SPEC §3.3, §9
-- `fields reset`), only when no record holds the field.
-- Request (FieldResetRequest): {ns, field, since, added}
--   field: the hash field (`p.<key>`); since, added: the outbox's last id and its count of
--   entries ever added (XINFO STREAM) before the caller began scanning every record of the
--   namespace (scan_records with `field`) and found none.
-- Reply (FieldResetReply): ok {type} | notfound {what = 'field'} | held {id} | unsure
-- Proving "no record holds it" by scanning inside one call would block the server for the
-- whole tenant. The scan runs outside, page by page, and this step closes the gap: every write
-- that can give a record a field (upsert, calls, merge, import) appends that record to the
-- outbox, so the records of the events after `since` are the only ones that may have gained
-- it meanwhile; they are checked here, atomically with the forgetting. When fewer events
-- follow `since` than were added since then, the outbox was trimmed past it and that list is
-- incomplete: `unsure`, and the caller scans again.

local function fn_field_reset(keys, args)
  local P, req = keys[1], request(args)
  local types = P .. 'types:' .. req.ns
  local kind = redis.call('HGET', types, req.field)
  if not kind then return reply({status = 'notfound', what = 'field'}) end
  local outbox = P .. 'outbox'
  if redis.call('EXISTS', outbox) == 1 then
    local info = hash_to_table(redis.call('XINFO', 'STREAM', outbox))
    local after = redis.call('XRANGE', outbox, '(' .. req.since, '+')
    if #after < tonumber(info['entries-added']) - req.added then
      return reply({status = 'unsure'})
    end
    local etype = ETYPE_OF[req.ns] .. '.upserted'
    local prefix = PREFIX_OF[req.ns]
    local seen = {}
    for _, entry in ipairs(after) do
      local event = hash_to_table(entry[2])
      if event.type == etype and not seen[event.id] then
        seen[event.id] = true
        local id = string.sub(event.id, #prefix + 1)
        if redis.call('HEXISTS', P .. req.ns .. ':' .. id, req.field) == 1 then
          return reply({status = 'held', id = id})
        end
      end
    end
  end
  redis.call('HDEL', types, req.field)
  return reply({status = 'ok', type = kind})
end
