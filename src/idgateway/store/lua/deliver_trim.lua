-- deliver_trim: trim the outbox below what every consumer group has finished.
-- When one of the named groups does not exist yet nothing is trimmed, so a vendor whose
-- worker has not started still gets every event. With no vendor at all (`tail`), a bounded
-- tail of the outbox is kept.
-- Request (TrimRequest): {groups: [vendor, ...]} | {tail: n}
-- Reply (TrimReply): ok {trimmed}
local function fn_deliver_trim(keys, args)
  local P, req = keys[1], request(args)
  local outbox = P .. 'outbox'
  if redis.call('EXISTS', outbox) == 0 then return reply({status = 'ok', trimmed = 0}) end
  if req.tail then
    return reply({status = 'ok', trimmed = redis.call('XTRIM', outbox, 'MAXLEN', '~', req.tail)})
  end
  local groups = {}
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', outbox)) do
    local t = hash_to_table(g)
    groups[t['name']] = t
  end
  local function older(a, b)
    local am, as = string.match(a, '^(%d+)-(%d+)$')
    local bm, bs = string.match(b, '^(%d+)-(%d+)$')
    am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
    return am < bm or (am == bm and as < bs)
  end
  local floor = nil
  for _, name in ipairs(req.groups) do
    local g = groups[name]
    if not g then return reply({status = 'ok', trimmed = 0}) end
    -- The first entry this group still needs: its oldest pending one, else the one after
    -- its last delivered id.
    local need
    if tonumber(g['pending']) > 0 then
      need = redis.call('XPENDING', outbox, name)[2]
    else
      local ms, seq = string.match(g['last-delivered-id'], '^(%d+)-(%d+)$')
      need = ms .. '-' .. (tonumber(seq) + 1)
    end
    if floor == nil or older(need, floor) then floor = need end
  end
  if floor == nil then return reply({status = 'ok', trimmed = 0}) end
  return reply({status = 'ok', trimmed = redis.call('XTRIM', outbox, 'MINID', floor)})
end
