"""What runs inside Redis for the Redis backend: its Lua scripts, each one atomic step.

    IDENTITY      the crawl's identity key: read it, or create it for a new crawl
    POP           promote due delayed entries, lease ready ones, take their host slots
    TAKE          the HostState take rule, alone
    REQUEUE       put back leases whose deadline passed
    RELEASE       put back given leases
    BACK_OFF      a host's next-allowed time, never shortened
    COUNTS        pending and leased counts
    PUSH_UNSEEN   the seen-set's test-and-set and the push of the new entries, together
    EXEC          a transaction: the recorded writes, applied once

Every script that can end or change the crawl (POP, COUNTS, PUSH_UNSEEN, EXEC) first
checks the crawl's identity key in the same step, so a Redis that lost its data
(restarted without persistence, flushed, keys evicted, ``reset``) is noticed at the
next pop or commit at no extra round trip: the script answers with an error whose
text starts with ``LOST_MARK`` instead of touching anything.
"""

from __future__ import annotations

__all__ = ["BACK_OFF", "COUNTS", "EXEC", "IDENTITY", "LOST_MARK", "POP", "PUSH_UNSEEN",
           "RELEASE", "REQUEUE", "TAKE"]

#: the first word of the error a script answers with when the crawl's identity is gone
LOST_MARK = "SCRAPER_CRAWL_LOST"

# The identity check: nil when `idkey` still holds this process's crawl id; otherwise
# the error reply (the key vanished, or a new crawl started in its place).
_LOST_FN = """
local function crawl_lost(idkey, id)
  local now = redis.call('GET', idkey)
  if now == id then return nil end
  if now then return redis.error_reply('%s replaced') end
  return redis.error_reply('%s missing')
end
""" % (LOST_MARK, LOST_MARK)

# KEYS: identity key; ARGV: a new crawl id. Returns the crawl's id (the new one if none).
IDENTITY = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  v = ARGV[1]
end
return v
"""

# The HostState take rule: a host with fewer than `limit` live slots and its next-allowed
# time passed gets a slot (expiring at `deadline`) and its next-allowed time moves
# `spacing * jitter` ahead. `params` caches the host's (limit, spacing) for one call.
_TAKE_FN = """
local function host_params(prefix, host, now, dlimit, dspacing, params)
  local p = params[host]
  if p == nil then
    local raw = redis.call('HGET', prefix .. 'hostparams', host)
    if raw then
      local t = string.find(raw, '\\t', 1, true)
      p = {tonumber(string.sub(raw, 1, t - 1)), tonumber(string.sub(raw, t + 1))}
    else
      p = {dlimit, dspacing}
    end
    params[host] = p
    redis.call('ZREMRANGEBYSCORE', prefix .. 'slots:' .. host, '-inf', now)
  end
  return p
end
local function take(prefix, host, token, now, deadline, dlimit, dspacing, jitter, params)
  local p = host_params(prefix, host, now, dlimit, dspacing, params)
  local skey = prefix .. 'slots:' .. host
  if redis.call('ZCARD', skey) >= p[1] then return false end
  local nxt = tonumber(redis.call('HGET', prefix .. 'hostnext', host) or '0')
  if nxt > now then return false end
  if p[2] > 0 then redis.call('HSET', prefix .. 'hostnext', host, now + p[2] * jitter) end
  redis.call('ZADD', skey, deadline, token)
  redis.call('PEXPIRE', skey, 3600000)
  return true
end
"""

# KEYS: q, delayed, leases, entries, identity key
# ARGV: prefix, now, limit, deadline, default limit, default spacing, jitter, closed (JSON),
#       crawl id
POP = _LOST_FN + _TAKE_FN + """
local lost = crawl_lost(KEYS[5], ARGV[9])
if lost then return lost end
local q, delayed, leases, entries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local deadline = tonumber(ARGV[4])
local dlimit, dspacing, jitter = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local full = {}
for _, h in ipairs(cjson.decode(ARGV[8])) do full[h] = true end
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local e = redis.call('HGET', entries, id)
  if e then
    local prio = tonumber(string.sub(e, 1, string.find(e, '\\t', 1, true) - 1))
    redis.call('ZADD', q, -prio, id)
  end
  redis.call('ZREM', delayed, id)
end
local out = {}
local params = {}
local start = 0
local scanned = 0
while #out < limit * 2 and scanned < 5000 do
  local ids = redis.call('ZRANGE', q, start, start + 199)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    local e = redis.call('HGET', entries, id)
    if e then
      local t1 = string.find(e, '\\t', 1, true)
      local t2 = string.find(e, '\\t', t1 + 1, true)
      local host = string.sub(e, t1 + 1, t2 - 1)
      if not full[host] then
        if take(prefix, host, id, now, deadline, dlimit, dspacing, jitter, params) then
          table.insert(out, id)
          table.insert(out, e)
          if #out >= limit * 2 then break end
        else
          full[host] = true
        end
      end
    else
      redis.call('ZREM', q, id)
    end
  end
  start = start + 200
end
for i = 1, #out, 2 do
  redis.call('ZREM', q, out[i])
  redis.call('ZADD', leases, deadline, out[i])
end
return out
"""

# ARGV: prefix, now, host, token, deadline, default limit, default spacing, jitter
TAKE = _TAKE_FN + """
local ok = take(ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[2]), tonumber(ARGV[5]),
                tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), {})
if ok then return 1 end
return 0
"""

# KEYS: q, leases, entries; ARGV: now
REQUEUE = """
local q, leases, entries = KEYS[1], KEYS[2], KEYS[3]
local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', ARGV[1], 'LIMIT', 0, 10000)
for _, id in ipairs(ids) do
  redis.call('ZREM', leases, id)
  local e = redis.call('HGET', entries, id)
  if e then
    local prio = tonumber(string.sub(e, 1, string.find(e, '\\t', 1, true) - 1))
    redis.call('ZADD', q, -prio, id)
  end
end
return #ids
"""

# KEYS: q, leases, entries; ARGV: lease ids
RELEASE = """
local q, leases, entries = KEYS[1], KEYS[2], KEYS[3]
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', leases, id) == 1 then
    local e = redis.call('HGET', entries, id)
    if e then
      local prio = tonumber(string.sub(e, 1, string.find(e, '\\t', 1, true) - 1))
      redis.call('ZADD', q, -prio, id)
      n = n + 1
    end
  end
end
return n
"""

# KEYS: hostnext; ARGV: host, until
BACK_OFF = """
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

# KEYS: q, delayed, leases, identity key; ARGV: crawl id. Returns {pending, leased}.
COUNTS = _LOST_FN + """
local lost = crawl_lost(KEYS[4], ARGV[1])
if lost then return lost end
return {redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])}
"""

# Marks and pushes in one step, so no fingerprint is ever seen without its entry queued.
# KEYS: seen, q, delayed, entries, seq, identity key
# ARGV: seen TTL in ms (0: the seen SET), the entry ids' suffix, then per entry four
#       values: the seen member ('' = no test, always pushed; the fingerprint in the SET,
#       or its hex for the key `seen:HEX` with the TTL), the stored text, 'q' (ready) or
#       'd' (waiting), its score; last, the crawl id. Returns 1 (pushed) or 0 (seen
#       before) per entry.
PUSH_UNSEEN = _LOST_FN + """
local lost = crawl_lost(KEYS[6], ARGV[#ARGV])
if lost then return lost end
local ttl = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV - 1, 4 do
  local member = ARGV[i]
  local new = true
  if member ~= '' then
    if ttl > 0 then
      new = redis.call('SET', KEYS[1] .. ':' .. member, 1, 'NX', 'PX', ttl) ~= false
    else
      new = redis.call('SADD', KEYS[1], member) == 1
    end
  end
  if new then
    local eid = string.format('%015d', redis.call('INCR', KEYS[5])) .. ARGV[2]
    redis.call('HSET', KEYS[4], eid, ARGV[i + 1])
    if ARGV[i + 2] == 'q' then
      redis.call('ZADD', KEYS[2], ARGV[i + 3], eid)
    else
      redis.call('ZADD', KEYS[3], ARGV[i + 3], eid)
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# A transaction: the writes recorded while it was open, applied in one step, once. The
# token key makes a retry after a lost reply (the writes were applied, the answer never
# arrived) a no-op instead of a second XADD/HINCRBY.
# KEYS: identity key; ARGV: crawl id, token key, token TTL in ms, then per command its
# argument count and its arguments (name first).
EXEC = _LOST_FN + """
local lost = crawl_lost(KEYS[1], ARGV[1])
if lost then return lost end
if not redis.call('SET', ARGV[2], 1, 'NX', 'PX', ARGV[3]) then return 0 end
local i = 4
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
"""
