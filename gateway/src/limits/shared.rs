//! Fleet-wide counters in Redis: the same sliding windows and in-flight counts as
//! `local.rs`, kept by two Lua scripts so every replica shares them.
//!
//! - `ADMIT` checks every limit of a request and, only when all pass, counts it: one
//!   round trip (`EVALSHA`) for all scopes, atomic, using Redis's clock (`TIME`) so
//!   replicas' clocks do not matter. A window is a hash `{slot index → units}`; an
//!   in-flight count is a sorted set of leases scored by expiry, so a replica that dies
//!   mid-request leaks its slot only until the lease expires.
//! - `SETTLE` runs after the response (off the hot path): token overruns are added to the
//!   current slot, unused reservations refunded to the slot they were taken from, leases
//!   removed.
//!
//! Every key of one request carries its tenant's hash tag, so both scripts stay in one
//! Redis Cluster slot.

use redis::Script;

use super::local::{SLOTS, WINDOW_MS};
use super::{Check, Decision, Kind, Verdict};
use crate::GatewayError;
use crate::redis::Redis;

const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local slots = tonumber(ARGV[2])
local width = math.floor(window / slots)
local cur = math.floor(now / width)
local ttl = tonumber(ARGV[3])
local lease = ARGV[4]
local out = {0, cur}
local denied = 0
for i = 1, #KEYS do
  local kind = ARGV[2 + 3 * i]
  local limit = tonumber(ARGV[3 + 3 * i])
  local cost = tonumber(ARGV[4 + 3 * i])
  local used, reset, ok = 0, 0, true
  if kind == 'w' then
    local h = redis.call('HGETALL', KEYS[i])
    local old, live = {}, {}
    for j = 1, #h, 2 do
      local b, v = tonumber(h[j]), tonumber(h[j + 1])
      if b <= cur - slots then old[#old + 1] = h[j] else used = used + v; live[#live + 1] = {b, v} end
    end
    if #old > 0 then redis.call('HDEL', KEYS[i], unpack(old)) end
    ok = used + cost <= limit
    if ok then
      reset = (cur + slots) * width - now
    elseif cost > limit then
      reset = window
    else
      table.sort(live, function(a, b) return a[1] < b[1] end)
      local freed = 0
      for _, e in ipairs(live) do
        freed = freed + e[2]
        if used - freed + cost <= limit then reset = (e[1] + slots) * width - now; break end
      end
    end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    used = redis.call('ZCARD', KEYS[i])
    ok = used < limit
    reset = 1000
  end
  if not ok and denied == 0 then denied = i end
  out[#out + 1] = used
  out[#out + 1] = reset
end
out[1] = denied
if denied == 0 then
  for i = 1, #KEYS do
    local kind = ARGV[2 + 3 * i]
    if kind == 'w' then
      redis.call('HINCRBY', KEYS[i], cur, tonumber(ARGV[4 + 3 * i]))
      redis.call('PEXPIRE', KEYS[i], window + width)
    else
      redis.call('ZADD', KEYS[i], now + ttl, lease)
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end
return out
"#;

const SETTLE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local slots = tonumber(ARGV[2])
local width = math.floor(window / slots)
local cur = math.floor(now / width)
local bucket = tonumber(ARGV[3])
local delta = tonumber(ARGV[4])
local lease = ARGV[5]
for i = 1, #KEYS do
  if ARGV[5 + i] == 'w' then
    if delta > 0 then
      redis.call('HINCRBY', KEYS[i], cur, delta)
      redis.call('PEXPIRE', KEYS[i], window + width)
    elseif delta < 0 and bucket > cur - slots and redis.call('EXISTS', KEYS[i]) == 1 then
      if redis.call('HINCRBY', KEYS[i], bucket, delta) <= 0 then redis.call('HDEL', KEYS[i], bucket) end
    end
  else
    redis.call('ZREM', KEYS[i], lease)
  end
end
return 0
"#;

/// The compiled scripts (their SHA-1s are computed once).
#[derive(Debug)]
pub struct Scripts {
    admit: Script,
    settle: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            admit: Script::new(ADMIT),
            settle: Script::new(SETTLE),
        }
    }
}

impl Scripts {
    /// Checks and counts `checks` (names are full Redis keys) in one round trip.
    pub async fn admit(
        &self,
        redis: &Redis,
        checks: &[Check],
        lease: &str,
        lease_ttl_ms: u64,
    ) -> Result<Decision, GatewayError> {
        let mut inv = self.admit.prepare_invoke();
        inv.arg(WINDOW_MS).arg(SLOTS).arg(lease_ttl_ms).arg(lease);
        for c in checks {
            inv.key(&c.name);
            inv.arg(kind_arg(c.kind)).arg(c.limit).arg(c.cost);
        }
        let raw: Vec<i64> = redis
            .call(|mut conn| async move { inv.invoke_async(&mut conn).await })
            .await?;
        let bad = || GatewayError::RedisUnavailable("unexpected admission script answer".into());
        if raw.len() != 2 + 2 * checks.len() {
            return Err(bad());
        }
        let denied = usize::try_from(raw[0]).map_err(|_| bad())?;
        let verdicts = checks
            .iter()
            .zip(raw[2..].chunks_exact(2))
            .enumerate()
            .map(|(i, (c, v))| Verdict {
                limit: c.limit,
                used: v[0].max(0) as u64,
                admitted: denied == 0 || i + 1 != denied,
                reset_ms: v[1],
            })
            .collect();
        Ok(Decision {
            denied: denied.checked_sub(1),
            bucket: raw[1],
            verdicts,
        })
    }

    /// Settles a finished request (see the module docs). `windows` and `leases` are full
    /// Redis keys.
    pub async fn settle(
        &self,
        redis: &Redis,
        windows: &[String],
        bucket: i64,
        delta: i64,
        leases: &[String],
        lease: &str,
    ) -> Result<(), GatewayError> {
        let mut inv = self.settle.prepare_invoke();
        inv.arg(WINDOW_MS)
            .arg(SLOTS)
            .arg(bucket)
            .arg(delta)
            .arg(lease);
        for k in windows {
            inv.key(k).arg("w");
        }
        for k in leases {
            inv.key(k).arg("c");
        }
        redis
            .call(|mut conn| async move { inv.invoke_async::<i64>(&mut conn).await })
            .await
            .map(drop)
    }
}

fn kind_arg(k: Kind) -> &'static str {
    match k {
        Kind::Window => "w",
        Kind::InFlight => "c",
    }
}
