"""What runs inside Redis for the Redis backends: their Lua scripts, each one atomic step
on one partition (every key a script touches shares the partition's prefix ``P``, so
on a Redis Cluster they share its hash tag and live on one shard).

    IDENTITY      the crawl's identity key: read it, or create it for a new crawl
    POP           promote due entries and hosts, lease a batch across hosts with room
    TAKE          the HostState take rule, alone
    REQUEUE       put back leases whose deadline passed
    RELEASE       put back given leases
    BACK_OFF      a host's next-allowed time, never shortened
    COUNTS        pending and leased counts
    PUSH          push entries (``push_unseen``: test-and-set each fingerprint first)
    EXEC          a transaction: the recorded writes (and GIVE/HOLD steps), applied once

The frontier of a partition (keys under ``P``):

    e           HASH  entry id → "priority\\thost\\tnot_before\\tdata"
    hq:{host}   ZSET  the host's ready entries: id → -priority (ids are zero-padded
                      sequence numbers, so FIFO within a priority)
    ready       ZSET  hosts with ready entries that may have room: host → -priority of
                      its best entry. A pop walks it from the top: O(log n) per lease
    waiting     ZSET  hosts with ready entries but no room until a time: host → when
                      (its next-allowed time, or the first deadline of its slots)
    delayed     ZSET  entries waiting for their not-before time: id → time
    leases      ZSET  id → lease deadline;  n  STRING  entries in every hq
    q           ZSET  the single queue of earlier versions: moved to hq:* by a pop
    slots:{h}   ZSET  "process|lease id" → deadline: requests in flight to host h
    claims:{h}  HASH  process → "until\\tweight": processes that wanted h and got less
    hostnext    HASH  host → next-allowed time;  hostparams  HASH  host → "limit\\tspacing"

Fair shares: while other processes claim a host (they asked and got less than they
wanted), a process holds at most its share of the host's slots, ``limit × weight /
(sum of the claimants' weights)``; with nobody else claiming, a process may take all.

Every script that can end or change the crawl first checks the crawl's identity key in
the same step, so a Redis that lost its data is noticed at the next pop or commit at no
extra round trip: the script answers with an error starting with ``LOST_MARK``.
"""

from __future__ import annotations

__all__ = ["BACK_OFF", "COUNTS", "EXEC", "IDENTITY", "LOST_MARK", "POP", "PUSH", "RELEASE",
           "REQUEUE", "TAKE"]

#: the first word of the error a script answers with when the crawl's identity is gone
LOST_MARK = "SCRAPER_CRAWL_LOST"

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

# The host rules shared by every script. `D` holds the call's defaults (limit, spacing).
_HOST_FN = """
local D = {}
local PARAMS = {}
local function params(P, host, now)
  local p = PARAMS[host]
  if p == nil then
    local raw = redis.call('HGET', P .. 'hostparams', host)
    if raw then
      local t = string.find(raw, '\\t', 1, true)
      p = {tonumber(string.sub(raw, 1, t - 1)), tonumber(string.sub(raw, t + 1))}
    else
      p = {D[1], D[2]}
    end
    PARAMS[host] = p
    redis.call('ZREMRANGEBYSCORE', P .. 'slots:' .. host, '-inf', now)
  end
  return p
end
local function entry_host(e)
  local t1 = string.find(e, '\\t', 1, true)
  local t2 = string.find(e, '\\t', t1 + 1, true)
  return tonumber(string.sub(e, 1, t1 - 1)), string.sub(e, t1 + 1, t2 - 1)
end
-- put `host` where it belongs: ready (it may have room), waiting (until a time), nowhere
local function place(P, host, now)
  local top = redis.call('ZRANGE', P .. 'hq:' .. host, 0, 0, 'WITHSCORES')
  if top[1] == nil then
    redis.call('ZREM', P .. 'ready', host)
    redis.call('ZREM', P .. 'waiting', host)
    return
  end
  local nxt = tonumber(redis.call('HGET', P .. 'hostnext', host) or '0')
  local until_ = nil
  if nxt > now then until_ = nxt end
  -- a full host stays in ready: a pop that finds it full claims a share of its slots
  -- (its slots come back by GIVE, or by their deadlines, seen by the next pop)
  if until_ then
    redis.call('ZREM', P .. 'ready', host)
    redis.call('ZADD', P .. 'waiting', until_, host)
  else
    redis.call('ZREM', P .. 'waiting', host)
    redis.call('ZADD', P .. 'ready', top[2], host)
  end
end
-- an entry id back into its host's ready queue (from delayed, leases)
local function enqueue(P, id, e)
  local prio, host = entry_host(e)
  redis.call('ZADD', P .. 'hq:' .. host, -prio, id)
  redis.call('INCR', P .. 'n')
  if not redis.call('ZSCORE', P .. 'waiting', host) then
    redis.call('ZADD', P .. 'ready', 'LT', -prio, host)
  end
end
-- a new entry: `score` is -priority; `nb` its not-before time (waits in delayed when later)
local function insert(P, stored, host, score, nb, now, suffix)
  local eid = string.format('%015d', redis.call('INCR', P .. 'seq')) .. suffix
  redis.call('HSET', P .. 'e', eid, stored)
  if nb > now then
    redis.call('ZADD', P .. 'delayed', nb, eid)
    return
  end
  redis.call('ZADD', P .. 'hq:' .. host, score, eid)
  redis.call('INCR', P .. 'n')
  if not redis.call('ZSCORE', P .. 'waiting', host) then
    redis.call('ZADD', P .. 'ready', 'LT', score, host)
  end
end
local function hold(P, host, until_, now)
  local cur = tonumber(redis.call('HGET', P .. 'hostnext', host) or '0')
  if until_ > cur then redis.call('HSET', P .. 'hostnext', host, until_) end
  if until_ > now and redis.call('ZSCORE', P .. 'ready', host) then
    redis.call('ZREM', P .. 'ready', host)
    redis.call('ZADD', P .. 'waiting', until_, host)
  end
end
-- ZADD of score/member pairs, 1,000 pairs per call (a call's arguments are bounded)
local function zadd_pairs(key, pairs)
  for i = 1, #pairs, 2000 do
    redis.call('ZADD', key, unpack(pairs, i, math.min(i + 1999, #pairs)))
  end
end
-- slots `me` may take on `host` now (0: none), and whether other processes claim it
local function room(P, host, me, weight, now)
  local p = params(P, host, now)
  local skey = P .. 'slots:' .. host
  local free = p[1] - redis.call('ZCARD', skey)
  if tonumber(redis.call('HGET', P .. 'hostnext', host) or '0') > now then return 0, p end
  local ckey = P .. 'claims:' .. host
  local claims = redis.call('HGETALL', ckey)
  local others = 0
  for i = 1, #claims, 2 do
    local t = string.find(claims[i + 1], '\\t', 1, true)
    if tonumber(string.sub(claims[i + 1], 1, t - 1)) < now then
      redis.call('HDEL', ckey, claims[i])
    elseif claims[i] ~= me then
      others = others + tonumber(string.sub(claims[i + 1], t + 1))
    end
  end
  if others > 0 and free > 0 then
    local mine = 0
    local prefix = me .. '|'
    for _, m in ipairs(redis.call('ZRANGE', skey, 0, -1)) do
      if string.sub(m, 1, #prefix) == prefix then mine = mine + 1 end
    end
    local share = math.ceil(p[1] * weight / (weight + others)) - mine
    if share < free then free = share end
  end
  if free < 0 then free = 0 end
  return free, p
end
local function take(P, host, member, now, deadline, jitter, p)
  redis.call('ZADD', P .. 'slots:' .. host, deadline, member)
  redis.call('PEXPIRE', P .. 'slots:' .. host, 3600000)
  if p[2] > 0 then redis.call('HSET', P .. 'hostnext', host, now + p[2] * jitter) end
end
"""

# KEYS: identity key
# ARGV: P, now, limit, deadline, default limit, default spacing, jitter, closed (JSON list),
#       process name, weight, crawl id
# Returns {pending, next delayed time or '', next waiting host time or '', starved (0/1),
#          id, entry, id, entry, ...}
POP = _LOST_FN + _HOST_FN + """
local lost = crawl_lost(KEYS[1], ARGV[11])
if lost then return lost end
local P = ARGV[1]
local now, limit, deadline = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
D = {tonumber(ARGV[5]), tonumber(ARGV[6])}
local jitter, me, weight = tonumber(ARGV[7]), ARGV[9], tonumber(ARGV[10])
local skip = {}
local nskip = 0
for _, h in ipairs(cjson.decode(ARGV[8])) do skip[h] = true end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)) do
  local e = redis.call('HGET', P .. 'e', id)
  if e then enqueue(P, id, e) end
  redis.call('ZREM', P .. 'delayed', id)
end
-- entries in the single queue of earlier versions (a crawl they left, or an outside
-- writer of that format) move to their hosts' queues
for _, id in ipairs(redis.call('ZRANGE', P .. 'q', 0, 999)) do
  local e = redis.call('HGET', P .. 'e', id)
  if e then enqueue(P, id, e) end
  redis.call('ZREM', P .. 'q', id)
end
for _, h in ipairs(redis.call('ZRANGEBYSCORE', P .. 'waiting', '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', P .. 'waiting', h)
  local top = redis.call('ZRANGE', P .. 'hq:' .. h, 0, 0, 'WITHSCORES')
  if top[1] then redis.call('ZADD', P .. 'ready', top[2], h) end
end
local out = {}
local leases = {}
local got, taken = 0, 0
local starved = 0
local steps = 0
while got < limit and steps < limit + 200 do
  steps = steps + 1
  local hosts = redis.call('ZRANGE', P .. 'ready', 0, nskip + 1, 'WITHSCORES')
  local host, below = nil, '+inf'
  for i = 1, #hosts, 2 do
    if host then below = hosts[i + 1]; break end
    if not skip[hosts[i]] then host = hosts[i] end
  end
  if host == nil then break end
  local free, p = room(P, host, me, weight, now)
  local ckey = P .. 'claims:' .. host
  local ids = nil
  if free <= 0 then
    redis.call('HSET', ckey, me, (now + 1) .. '\\t' .. weight)
    starved = 1
    place(P, host, now)
    if redis.call('ZSCORE', P .. 'ready', host) then
      skip[host] = true
      nskip = nskip + 1
    end
  else
    local n = math.min(free, limit - got)
    if p[2] > 0 then n = 1 end
    local hq = P .. 'hq:' .. host
    ids = redis.call('ZRANGE', hq, '-inf', below, 'BYSCORE', 'LIMIT', 0, n)
    if #ids == 0 then ids = redis.call('ZRANGE', hq, 0, 0) end
    if #ids == 0 then
      place(P, host, now)
      ids = nil
    end
  end
  if free > 0 and ids then
    redis.call('ZREM', P .. 'hq:' .. host, unpack(ids))
    taken = taken + #ids
    local es = redis.call('HMGET', P .. 'e', unpack(ids))
    local slots = {}
    for i, id in ipairs(ids) do
      if es[i] then
        slots[#slots + 1] = deadline
        slots[#slots + 1] = me .. '|' .. id
        leases[#leases + 1] = deadline
        leases[#leases + 1] = id
        out[#out + 1] = id
        out[#out + 1] = es[i]
        got = got + 1
      end
    end
    if #slots > 0 then
      local skey = P .. 'slots:' .. host
      zadd_pairs(skey, slots)
      redis.call('PEXPIRE', skey, 3600000)
      if p[2] > 0 then redis.call('HSET', P .. 'hostnext', host, now + p[2] * jitter) end
    end
    if got < limit and #ids == free then
      redis.call('HSET', ckey, me, (now + 1) .. '\\t' .. weight)
      starved = 1
    else
      redis.call('HDEL', ckey, me)
    end
    place(P, host, now)
  end
end
if #leases > 0 then zadd_pairs(P .. 'leases', leases) end
if taken > 0 then redis.call('DECRBY', P .. 'n', taken) end
local pending = tonumber(redis.call('GET', P .. 'n') or '0') + redis.call('ZCARD', P .. 'delayed')
local d = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
local w = redis.call('ZRANGE', P .. 'waiting', 0, 0, 'WITHSCORES')
local head = {pending, d[2] or '', w[2] or '', starved}
for i = 1, #out do head[#head + 1] = out[i] end
return head
"""

# KEYS: identity key; ARGV: P, now, host, member, deadline, default limit, default spacing,
# jitter. Returns 1 when a slot was taken.
TAKE = _HOST_FN + """
local P, now = ARGV[1], tonumber(ARGV[2])
D = {tonumber(ARGV[6]), tonumber(ARGV[7])}
local host = ARGV[3]
local p = params(P, host, now)
if redis.call('ZCARD', P .. 'slots:' .. host) >= p[1] then return 0 end
if tonumber(redis.call('HGET', P .. 'hostnext', host) or '0') > now then return 0 end
take(P, host, ARGV[4], now, tonumber(ARGV[5]), tonumber(ARGV[8]), p)
return 1
"""

# KEYS: identity key; ARGV: P, now (or +inf). Returns how many.
REQUEUE = _HOST_FN + """
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', ARGV[2], 'LIMIT', 0, 10000)
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. 'leases', id)
  local e = redis.call('HGET', P .. 'e', id)
  if e then enqueue(P, id, e) end
end
return #ids
"""

# KEYS: identity key; ARGV: P, lease ids...
RELEASE = _HOST_FN + """
local P = ARGV[1]
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('ZREM', P .. 'leases', id) == 1 then
    local e = redis.call('HGET', P .. 'e', id)
    if e then
      enqueue(P, id, e)
      n = n + 1
    end
  end
end
return n
"""

# KEYS: identity key; ARGV: P, host, until, now
BACK_OFF = _HOST_FN + """
hold(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
"""

# KEYS: identity key; ARGV: P, crawl id. Returns {pending, leased}.
COUNTS = _LOST_FN + """
local lost = crawl_lost(KEYS[1], ARGV[2])
if lost then return lost end
local P = ARGV[1]
return {tonumber(redis.call('GET', P .. 'n') or '0') + redis.call('ZCARD', P .. 'delayed'),
        redis.call('ZCARD', P .. 'leases')}
"""

# Pushes entries, each after the test-and-set of its seen member, in one step: no
# fingerprint is ever seen without its entry queued. The batch costs one SMISMEMBER and
# one SADD (with seen_ttl: one SET NX per member), one INCRBY for its ids, one HSET, and
# per host one ZADD (and a ZSCORE, a ZADD to `ready`).
# KEYS: identity key
# ARGV: P, seen key, seen TTL in ms (0: the seen SET), now, the ids' suffix, then per entry
#       five values: the seen member ('' = no test, always pushed), the stored text, the
#       host, -priority, not-before time (0: ready); last, the crawl id.
# Returns 1 (pushed) or 0 (seen before, or earlier in the batch) per entry.
PUSH = _LOST_FN + _HOST_FN + """
local lost = crawl_lost(KEYS[1], ARGV[#ARGV])
if lost then return lost end
local P, seen, ttl, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local last = #ARGV - 1
local out = {}
local fresh = {}
if ttl > 0 then
  for i = 6, last, 5 do
    local m = ARGV[i]
    if m == '' or redis.call('SET', seen .. ':' .. m, 1, 'NX', 'PX', ttl) then
      fresh[#fresh + 1] = i
      out[#out + 1] = 1
    else
      out[#out + 1] = 0
    end
  end
else
  local ms = {}
  for i = 6, last, 5 do
    if ARGV[i] ~= '' then ms[#ms + 1] = ARGV[i] end
  end
  local known = {}
  if #ms > 0 then
    local r = redis.call('SMISMEMBER', seen, unpack(ms))
    for k = 1, #ms do
      if r[k] == 1 then known[ms[k]] = true end
    end
  end
  local adds = {}
  for i = 6, last, 5 do
    local m = ARGV[i]
    if m ~= '' and known[m] then
      out[#out + 1] = 0
    else
      if m ~= '' then
        known[m] = true
        adds[#adds + 1] = m
      end
      fresh[#fresh + 1] = i
      out[#out + 1] = 1
    end
  end
  if #adds > 0 then redis.call('SADD', seen, unpack(adds)) end
end
if #fresh == 0 then return out end
local seq = redis.call('INCRBY', P .. 'seq', #fresh) - #fresh
local fields, delayed, queues, hosts = {}, {}, {}, {}
local ready = 0
for k, i in ipairs(fresh) do
  local eid = string.format('%015d', seq + k) .. ARGV[5]
  fields[#fields + 1] = eid
  fields[#fields + 1] = ARGV[i + 1]
  local nb = tonumber(ARGV[i + 4])
  if nb > now then
    delayed[#delayed + 1] = nb
    delayed[#delayed + 1] = eid
  else
    local h = ARGV[i + 2]
    local q = queues[h]
    if q == nil then
      q = {}
      queues[h] = q
      hosts[#hosts + 1] = h
    end
    q[#q + 1] = tonumber(ARGV[i + 3])
    q[#q + 1] = eid
    ready = ready + 1
  end
end
for k = 1, #fields, 2000 do
  redis.call('HSET', P .. 'e', unpack(fields, k, math.min(k + 1999, #fields)))
end
if #delayed > 0 then zadd_pairs(P .. 'delayed', delayed) end
if #hosts == 0 then return out end
for _, h in ipairs(hosts) do zadd_pairs(P .. 'hq:' .. h, queues[h]) end
-- the hosts not waiting for a time go to `ready` at their best new entry: one ZMSCORE,
-- one ZADD for the whole batch
local tops = {}
for k = 1, #hosts, 1000 do
  local part = {unpack(hosts, k, math.min(k + 999, #hosts))}
  local waits = redis.call('ZMSCORE', P .. 'waiting', unpack(part))
  for j, h in ipairs(part) do
    if not waits[j] then
      local q = queues[h]
      local best = q[1]
      for m = 3, #q, 2 do
        if q[m] < best then best = q[m] end
      end
      tops[#tops + 1] = best
      tops[#tops + 1] = h
    end
  end
end
for k = 1, #tops, 2000 do
  redis.call('ZADD', P .. 'ready', 'LT', unpack(tops, k, math.min(k + 1999, #tops)))
end
redis.call('INCRBY', P .. 'n', ready)
return out
"""

# A transaction: the writes recorded while it was open, applied in one step, once. The
# token key makes a retry after a lost reply a no-op instead of a second XADD/HINCRBY.
# Besides Redis commands, steps of the frontier's rules: GIVE host member now, HOLD host
# until now, ENQ stored host -priority not-before now id-suffix (a new entry). The GIVEs
# are applied last, one ZREM per host: a slot given back changes no host's place (a host
# with entries stays in `ready` while full, or in `waiting` until its time), and within
# the one step their order against the other writes is not seen by anyone.
# KEYS: identity key; ARGV: crawl id, token key, token TTL in ms, P, default limit, default
# spacing, then per command its argument count and its arguments (name first).
EXEC = _LOST_FN + _HOST_FN + """
local lost = crawl_lost(KEYS[1], ARGV[1])
if lost then return lost end
if not redis.call('SET', ARGV[2], 1, 'NX', 'PX', ARGV[3]) then return 0 end
local P = ARGV[4]
D = {tonumber(ARGV[5]), tonumber(ARGV[6])}
local gives, given = {}, {}
local i = 7
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local name = ARGV[i + 1]
  if name == 'GIVE' then
    local host = ARGV[i + 2]
    local ms = gives[host]
    if ms == nil then
      ms = {}
      gives[host] = ms
      given[#given + 1] = host
    end
    ms[#ms + 1] = ARGV[i + 3]
  elseif name == 'HOLD' then
    hold(P, ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
  elseif name == 'ENQ' then
    insert(P, ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]),
           ARGV[i + 7])
  else
    redis.call(unpack(ARGV, i + 1, i + n))
  end
  i = i + n + 1
end
for _, host in ipairs(given) do
  local ms = gives[host]
  for k = 1, #ms, 1000 do
    redis.call('ZREM', P .. 'slots:' .. host, unpack(ms, k, math.min(k + 999, #ms)))
  end
end
return 1
"""
