-- scan_records: one page of a tenant's contacts or companies (read only): `idgateway export`,
-- and `fields reset` looking for a record that holds a field.
-- Request (ScanRequest): {ns, cursor, count, field?}
-- Reply (ScanReply): ok {cursor, records?: {id: fields}, holders?: {id: 1}}
--   records: every record of the page, as stored; with `field`, only the ids of the records
--   holding that hash field (`holders`) and no record.
-- SCAN runs where the function runs: on the node that holds the tenant's slot, so a Redis
-- Cluster needs no per-node iteration (Valkey scans only that slot for a hash-tagged
-- pattern). Its guarantees are SCAN's: every record present for the whole scan is returned,
-- some may come twice (the caller drops repeats), and a page may be empty before the end
-- (cursor '0').
local function fn_scan_records(keys, args)
  local P, req = keys[1], request(args)
  local prefix = P .. req.ns .. ':'
  local page = redis.call('SCAN', req.cursor, 'MATCH', prefix .. '*', 'COUNT', req.count)
  local out = {}
  for _, key in ipairs(page[2]) do
    local id = string.sub(key, #prefix + 1)
    if req.field then
      if redis.call('HEXISTS', key, req.field) == 1 then out[id] = 1 end
    else
      local flat = redis.call('HGETALL', key)
      if #flat > 0 then out[id] = hash_to_table(flat) end
    end
  end
  if req.field then return reply({status = 'ok', cursor = page[1], holders = out}) end
  return reply({status = 'ok', cursor = page[1], records = out})
end
