//! Runtime configuration, read once at init from environment variables.
//!
//! Every knob has a documented default (the `Default` impls below) and an
//! environment variable. The Lambda mains read `std::env`; the emulator passes
//! the template's `Environment.Variables` overlaid with its own environment, so
//! [`Config::from_lookup`] takes a lookup function rather than touching the
//! process environment itself.

use std::time::Duration;

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is set but does not parse. Fix the deployment's
    /// environment; the function cannot start with it.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The environment variable's name.
        var: &'static str,
        /// The value found.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A required variable is missing. Set it in template.yaml or the shell.
    #[error("{var} must be set: {hint}")]
    Missing {
        /// The environment variable's name.
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
}

pub use roomcast_protocol::Limits;

/// The per-connection rate limit: a token bucket (implemented as GCRA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained messages per second. Default 10 (`ROOMCAST_RATE_PER_SEC`).
    pub per_second: u32,
    /// Messages allowed in a burst above the sustained rate. Default 20
    /// (`ROOMCAST_RATE_BURST`).
    pub burst: u32,
    /// Rejected messages, without the bucket ever refilling, after which the
    /// connection is closed as abusive. Default 100 (`ROOMCAST_ABUSE_STRIKES`).
    pub abuse_strikes: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 10,
            burst: 20,
            abuse_strikes: 100,
        }
    }
}

/// Fan-out through the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FanoutConfig {
    /// PostToConnection calls in flight at once. Default 64
    /// (`ROOMCAST_FANOUT_CONCURRENCY`).
    pub concurrency: usize,
    /// Deadline for one gateway call; SDK calls have been seen to hang.
    /// Default 3 s (`ROOMCAST_POST_TIMEOUT_MS`).
    pub call_timeout: Duration,
    /// Rooms of up to this many members fan out inline, in the invocation
    /// that stored the message; larger ones in shards through the `fanout`
    /// function (when one is configured). Default 500
    /// (`ROOMCAST_FANOUT_INLINE_MAX`).
    pub inline_max: usize,
    /// Connections per shard. Default 500 (`ROOMCAST_FANOUT_SHARD_SIZE`);
    /// fewer when the frame is large, so a shard fits one asynchronous
    /// invocation (256 KB).
    pub shard_size: usize,
    /// Attempts at each post that fails for a reason worth retrying
    /// (throttled, timed out, unavailable), each in a re-queued shard. Then
    /// the frame is counted undelivered. Default 3 (`ROOMCAST_FANOUT_ATTEMPTS`).
    pub attempts: u32,
    /// The stack's budget of PostToConnection calls per second for sharded
    /// fan-out; 0 for none. Default 0 (`ROOMCAST_FANOUT_BUDGET`). The
    /// template sets it, with `budget_shares`.
    pub budget_per_second: u32,
    /// How many processes share the budget: the `fanout` function's
    /// reserved concurrency, which caps how many run at once. Default 1
    /// (`ROOMCAST_FANOUT_BUDGET_SHARES`).
    pub budget_shares: u32,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            call_timeout: Duration::from_secs(3),
            inline_max: 500,
            shard_size: 500,
            attempts: 3,
            budget_per_second: 0,
            budget_shares: 1,
        }
    }
}

impl FanoutConfig {
    /// PostToConnection calls per second one process may make for sharded
    /// fan-out (the stack's budget split over its shares); `None`: no cap.
    pub fn instance_budget(&self) -> Option<f64> {
        (self.budget_per_second > 0)
            .then(|| f64::from(self.budget_per_second) / f64::from(self.budget_shares.max(1)))
    }
}

/// Lifetimes of stored items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// How long messages stay in history. Default 7 days
    /// (`ROOMCAST_HISTORY_TTL_SECS`).
    pub history: Duration,
    /// Connection items outlive API Gateway's 2 h maximum by a margin,
    /// because `$disconnect` is best-effort. Default 2 h 15 min
    /// (`ROOMCAST_CONNECTION_TTL_SECS`).
    pub connection: Duration,
    /// API Gateway's idle timeout. A membership not refreshed within it (plus
    /// the refresh interval) no longer counts for presence. Default 10 min
    /// (`ROOMCAST_IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            history: Duration::from_secs(7 * 24 * 3600),
            connection: Duration::from_secs(2 * 3600 + 15 * 60),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl Retention {
    /// Memberships are refreshed at most this often; half the idle timeout,
    /// so a client heartbeating every 5 min keeps them alive with one refresh.
    pub fn membership_refresh(&self) -> Duration {
        self.idle_timeout / 2
    }

    /// How long a membership counts as live after its last refresh.
    pub fn membership_ttl(&self) -> Duration {
        self.idle_timeout + self.membership_refresh()
    }
}

/// Everything the domain needs to know about its deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Frame validation limits.
    pub limits: Limits,
    /// Per-connection rate limit.
    pub rate: RateLimit,
    /// Gateway fan-out.
    pub fanout: FanoutConfig,
    /// Item lifetimes.
    pub retention: Retention,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds. Default 30
    /// (`ROOMCAST_TOKEN_LEEWAY_SECS`).
    pub token_leeway_secs: u64,
    /// The presence roster cap: a joiner gets at most this many members,
    /// marked truncated beyond it, and rooms larger than it send no
    /// joined, left or typing events (as Pusher caps presence channels at
    /// 100). Default 100 (`ROOMCAST_PRESENCE_MAX`).
    pub presence_max: usize,
    /// How long a taken seq may stay without its message before a reader
    /// closes it with a tombstone, so that clients waiting behind it go
    /// on. A writer still alive past it loses the seq and takes a new one
    /// (nothing is lost either way); it should exceed the time one store
    /// write can take, SDK retries included. Default 5 s
    /// (`ROOMCAST_HOLE_TIMEOUT_MS`).
    pub hole_timeout: Duration,
}

impl Config {
    /// Reads every knob through `lookup`, falling back to the defaults.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let limits = Limits {
            max_room_len: num(lookup, "ROOMCAST_MAX_ROOM_LEN", d.limits.max_room_len, 1)?,
            max_id_len: num(lookup, "ROOMCAST_MAX_ID_LEN", d.limits.max_id_len, 1)?,
            max_data_bytes: num(
                lookup,
                "ROOMCAST_MAX_DATA_BYTES",
                d.limits.max_data_bytes,
                2,
            )?,
            history_page_max: num(
                lookup,
                "ROOMCAST_HISTORY_PAGE_MAX",
                d.limits.history_page_max,
                1,
            )?,
            history_page_default: num(
                lookup,
                "ROOMCAST_HISTORY_PAGE_DEFAULT",
                d.limits.history_page_default,
                1,
            )?,
            resume_max: num(lookup, "ROOMCAST_RESUME_MAX", d.limits.resume_max, 1)?,
            max_token_len: num(lookup, "ROOMCAST_MAX_TOKEN_LEN", d.limits.max_token_len, 16)?,
        };
        let rate = RateLimit {
            per_second: num(lookup, "ROOMCAST_RATE_PER_SEC", d.rate.per_second, 1)?,
            burst: num(lookup, "ROOMCAST_RATE_BURST", d.rate.burst, 1)?,
            abuse_strikes: num(lookup, "ROOMCAST_ABUSE_STRIKES", d.rate.abuse_strikes, 1)?,
        };
        let fanout = FanoutConfig {
            concurrency: num(
                lookup,
                "ROOMCAST_FANOUT_CONCURRENCY",
                d.fanout.concurrency,
                1,
            )?,
            call_timeout: Duration::from_millis(num(
                lookup,
                "ROOMCAST_POST_TIMEOUT_MS",
                millis(d.fanout.call_timeout),
                1,
            )?),
            inline_max: num(lookup, "ROOMCAST_FANOUT_INLINE_MAX", d.fanout.inline_max, 1)?,
            shard_size: num(lookup, "ROOMCAST_FANOUT_SHARD_SIZE", d.fanout.shard_size, 1)?,
            attempts: num(lookup, "ROOMCAST_FANOUT_ATTEMPTS", d.fanout.attempts, 1)?,
            budget_per_second: num(lookup, "ROOMCAST_FANOUT_BUDGET", 0, 0)?,
            budget_shares: num(lookup, "ROOMCAST_FANOUT_BUDGET_SHARES", 1, 1)?,
        };
        let retention = Retention {
            history: secs(lookup, "ROOMCAST_HISTORY_TTL_SECS", d.retention.history)?,
            connection: secs(
                lookup,
                "ROOMCAST_CONNECTION_TTL_SECS",
                d.retention.connection,
            )?,
            idle_timeout: secs(
                lookup,
                "ROOMCAST_IDLE_TIMEOUT_SECS",
                d.retention.idle_timeout,
            )?,
        };
        let config = Self {
            limits,
            rate,
            fanout,
            retention,
            token_leeway_secs: num(lookup, "ROOMCAST_TOKEN_LEEWAY_SECS", d.token_leeway_secs, 0)?,
            presence_max: num(lookup, "ROOMCAST_PRESENCE_MAX", d.presence_max, 1)?,
            hole_timeout: Duration::from_millis(num(
                lookup,
                "ROOMCAST_HOLE_TIMEOUT_MS",
                millis(d.hole_timeout),
                1,
            )?),
        };
        if config.limits.history_page_default > config.limits.history_page_max {
            return Err(ConfigError::Invalid {
                var: "ROOMCAST_HISTORY_PAGE_DEFAULT",
                value: config.limits.history_page_default.to_string(),
                reason: "must not exceed ROOMCAST_HISTORY_PAGE_MAX".into(),
            });
        }
        Ok(config)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            rate: RateLimit::default(),
            fanout: FanoutConfig::default(),
            retention: Retention::default(),
            token_leeway_secs: 30,
            presence_max: 100,
            hole_timeout: Duration::from_secs(5),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn num<T>(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    min: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = lookup(var).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    let value: T = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        var,
        value: raw.clone(),
        reason: "not a whole number".into(),
    })?;
    if value < min {
        return Err(ConfigError::Invalid {
            var,
            value: raw,
            reason: format!("must be at least {min}"),
        });
    }
    Ok(value)
}

fn secs(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    num(lookup, var, default.as_secs(), 1).map(Duration::from_secs)
}

/// Reads an optional string variable, treating empty as unset.
pub fn optional(lookup: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    lookup(var).filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_apply_when_unset() {
        let c = Config::from_lookup(&lookup(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.token_leeway_secs, 30);
        assert_eq!(c.limits.max_data_bytes, 32 * 1024);
        assert_eq!(c.rate.per_second, 10);
        assert_eq!(c.rate.burst, 20);
        assert_eq!(c.fanout.concurrency, 64);
        assert_eq!(c.retention.history, Duration::from_secs(604_800));
    }

    #[test]
    fn values_override_defaults() {
        let c = Config::from_lookup(&lookup(&[
            ("ROOMCAST_RATE_PER_SEC", "5"),
            ("ROOMCAST_POST_TIMEOUT_MS", "250"),
            ("ROOMCAST_IDLE_TIMEOUT_SECS", " 2 "),
        ]))
        .unwrap();
        assert_eq!(c.rate.per_second, 5);
        assert_eq!(c.fanout.call_timeout, Duration::from_millis(250));
        assert_eq!(c.retention.idle_timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_lookup(&lookup(&[("ROOMCAST_RATE_BURST", "lots")])).unwrap_err();
        assert!(err.to_string().contains("ROOMCAST_RATE_BURST"), "{err}");
        let err =
            Config::from_lookup(&lookup(&[("ROOMCAST_FANOUT_CONCURRENCY", "0")])).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err =
            Config::from_lookup(&lookup(&[("ROOMCAST_HISTORY_PAGE_DEFAULT", "500")])).unwrap_err();
        assert!(err.to_string().contains("HISTORY_PAGE_MAX"), "{err}");
    }
}
