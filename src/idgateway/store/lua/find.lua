-- find: a record by one identifying value, the id and the record in one step (read only).
-- Request (FindRequest): {ns, kind, value}
-- Reply (FindReply): ok {id, fields} | notfound
local function fn_find(keys, args)
  local P, req = keys[1], request(args)
  local field = req.kind .. ':' .. req.value
  local id = redis.call('HGET', ix_key(P, req.ns, field), field)
  if not id then return reply({status = 'notfound', what = req.ns}) end
  local flat = redis.call('HGETALL', P .. req.ns .. ':' .. id)
  if #flat == 0 then return reply({status = 'notfound', what = req.ns}) end
  return reply({status = 'ok', id = id, fields = hash_to_table(flat)})
end
