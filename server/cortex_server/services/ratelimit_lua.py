"""The Redis side of the rate limiter: two atomic server-side scripts.

Each limit group (a key, its org) has three Redis keys: a GCRA "theoretical arrival time" for
requests, one for tokens, and a sorted set of in-flight request leases for concurrency.
CHECK tests every limit of every group and commits all of them only if all pass, in one
script, so N daemons racing for the last slot admit exactly one. Time comes from Redis
(TIME), so daemons with skewed clocks agree.
"""

# KEYS: per group g (0-based): 3g+1 = requests TAT, 3g+2 = tokens TAT, 3g+3 = in-flight zset
# ARGV: 1 cost (tokens estimate), 2 request id, 3 lease ms, 4 period ms, then per group: rpm, tpm, concurrent
CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local rid = ARGV[2]
local lease = tonumber(ARGV[3])
local period = tonumber(ARGV[4])
local groups = #KEYS / 3
local commits = {}
-- best (tightest) header values: limit, remaining, reset ms for requests and tokens;
-- limit, remaining (after this request) for concurrency
local rq = {-1, -1, 0}
local tk = {-1, -1, 0}
local cc = {-1, -1}

local function gcra(key, limit, amount, hdr)
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + amount * interval
  local over = new_tat - now - period
  if over > 0.001 then
    local retry = over
    if amount > limit then retry = period end
    -- reset: until the bucket is full again (tat - now), never more than the window
    return false, retry, math.min(period, math.ceil(tat - now))
  end
  local remaining = math.floor((period - (new_tat - now)) / interval + 0.001)
  if hdr[2] < 0 or remaining < hdr[2] then
    hdr[1] = limit; hdr[2] = remaining; hdr[3] = math.ceil(new_tat - now)
  end
  table.insert(commits, {key, new_tat})
  return true, 0
end

for g = 0, groups - 1 do
  local rpm = tonumber(ARGV[5 + 3 * g])
  local tpm = tonumber(ARGV[6 + 3 * g])
  local conc = tonumber(ARGV[7 + 3 * g])
  if rpm > 0 then
    local ok, retry, reset = gcra(KEYS[3 * g + 1], rpm, 1, rq)
    if not ok then return {0, 'requests', math.ceil(retry), rpm, 0, reset, -1, -1, 0, -1, -1} end
  end
  if tpm > 0 then
    local ok, retry, reset = gcra(KEYS[3 * g + 2], tpm, cost, tk)
    if not ok then return {0, 'tokens', math.ceil(retry), -1, -1, 0, tpm, 0, reset, -1, -1} end
  end
  if conc > 0 then
    local zkey = KEYS[3 * g + 3]
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
    local inflight = redis.call('ZCARD', zkey)
    if inflight >= conc then
      return {0, 'concurrency', 1000, rq[1], rq[2], rq[3], tk[1], tk[2], tk[3], conc, 0}
    end
    if cc[2] < 0 or conc - inflight - 1 < cc[2] then
      cc[1] = conc; cc[2] = conc - inflight - 1
    end
  end
end
for _, c in ipairs(commits) do
  redis.call('SET', c[1], string.format('%.3f', c[2]), 'PX', math.ceil(c[2] - now) + 1000)
end
for g = 0, groups - 1 do
  if tonumber(ARGV[7 + 3 * g]) > 0 then
    local zkey = KEYS[3 * g + 3]
    redis.call('ZADD', zkey, now + lease, rid)
    redis.call('PEXPIRE', zkey, lease)
  end
end
return {1, '', 0, rq[1], rq[2], rq[3], tk[1], tk[2], tk[3], cc[1], cc[2]}
"""

# KEYS: per group: 2g+1 = tokens TAT, 2g+2 = in-flight zset
# ARGV: 1 token delta (used - estimated), 2 request id, 3 period ms, then per group: tpm
FINISH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delta = tonumber(ARGV[1])
local rid = ARGV[2]
local period = tonumber(ARGV[3])
for g = 0, #KEYS / 2 - 1 do
  local tpm = tonumber(ARGV[4 + g])
  local tkey = KEYS[2 * g + 1]
  if tpm > 0 and delta ~= 0 then
    local tat = tonumber(redis.call('GET', tkey))
    if tat ~= nil or delta > 0 then
      if tat == nil or tat < now then tat = now end
      local new_tat = tat + delta * (period / tpm)
      if new_tat <= now then
        redis.call('DEL', tkey)
      else
        redis.call('SET', tkey, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
      end
    end
  end
  redis.call('ZREM', KEYS[2 * g + 2], rid)
end
return 1
"""

# KEYS: in-flight zsets; ARGV: 1 lease ms, then one request id per key (KEYS[i] ↔ ARGV[i + 1])
# Re-adds each running request with a fresh expiry: a lease that lapsed while Redis stalled
# comes back, so the set matches what runs. The caller stops renewing a request before its
# FINISH, so a finished request is not brought back (and if a late one were, it lapses again).
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return #KEYS
"""
