-- limit: spend one request of each limit (SPEC §5.1), for calls that write nothing; writes
-- check their limits inside their own function.
-- Request (LimitRequest): {limits: [{key, name, quota, window_ms, burst}]}
-- Reply (LimitReply): ok | limited {limit, retry_ms, quota, window_ms}
local function fn_limit(keys, args)
  local P, req = keys[1], request(args)
  local hit = rate_check(P, req.limits, time_us())
  if hit then return limited_reply(hit) end
  return reply({status = 'ok'})
end
