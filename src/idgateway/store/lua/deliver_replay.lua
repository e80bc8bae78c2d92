-- deliver_replay: put a dead delivery back in its vendor's queue (SPEC §6 dead letters).
-- Request (ReplayRequest): {id (delivery id)}
-- Reply (ReplayReply): ok {vendor, record_id} | notfound
local function fn_deliver_replay(keys, args)
  local P, req = keys[1], request(args)
  local now = math.floor(time_us() / 1000)
  local sid = redis.call('HGET', P .. 'deadix', req.id)
  if not sid then return reply({status = 'notfound', what = 'd'}) end
  local entry = redis.call('XRANGE', P .. 'dead', sid, sid)[1]
  redis.call('HDEL', P .. 'deadix', req.id)
  if not entry then return reply({status = 'notfound', what = 'd'}) end
  local fields = hash_to_table(entry[2])
  redis.call('XDEL', P .. 'dead', sid)
  redis.call('HINCRBY', P .. 'deadn', fields.vendor, -1)
  redis.call('HDEL', P .. 'jobs:' .. fields.vendor, fields.record_id)
  if not redis.call('ZSCORE', P .. 'f:' .. fields.vendor, fields.record_id) then
    redis.call('ZADD', P .. 'q:' .. fields.vendor, now, fields.record_id)
  end
  return reply({status = 'ok', vendor = fields.vendor, record_id = fields.record_id})
end
