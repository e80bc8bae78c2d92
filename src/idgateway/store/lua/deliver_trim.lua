-- Trim the outbox below what every consumer group has finished. KEYS[1]: outbox
-- ARGV: the group names that must exist (every enabled vendor); when one is missing nothing
-- is trimmed, so a vendor whose worker has not started yet still gets every event.
-- With no vendor at all, a bounded tail (ARGV[1] = '#tail:<n>') is kept.
-- Reply: the number of entries removed.
local outbox = KEYS[1]
if redis.call('EXISTS', outbox) == 0 then return 0 end
if string.sub(ARGV[1] or '', 1, 6) == '#tail:' then
  return redis.call('XTRIM', outbox, 'MAXLEN', '~', tonumber(string.sub(ARGV[1], 7)))
end
local groups = {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', outbox)) do
  local t = {}
  for i = 1, #g, 2 do t[g[i]] = g[i + 1] end
  groups[t['name']] = t
end
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local floor = nil
for _, name in ipairs(ARGV) do
  local g = groups[name]
  if not g then return 0 end
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
if floor == nil then return 0 end
return redis.call('XTRIM', outbox, 'MINID', floor)
