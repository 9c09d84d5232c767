//! The workers' section of the configuration: how long a hold lasts, how many seats a
//! customer's live holds may cover, how retries back off, and where a worker-only process
//! serves its metrics. The binary composes it with the others; the redrive limit (`USHER_MAX_RECEIVES`)
//! is the backend's, since the queues enforce it too.

use domain::booking::DEFAULT_MAX_HELD_SEATS;
use infra::config::{ConfigError, number, present};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `USHER_HOLD_TTL` seconds, default 10 minutes.
    pub hold_ttl: Duration,
    /// `USHER_MAX_HELD_SEATS`, default 20: the seats one customer's live holds may cover
    /// at once; the booking pool passes it to each hold's transaction.
    pub max_held_seats: usize,
    /// `USHER_RETRY_BASE_MS`: the first retry's backoff, doubling per receive.
    pub retry_base: Duration,
    /// `USHER_RETRY_MAX_MS`: the backoff's cap (full jitter below it).
    pub retry_max: Duration,
    /// `USHER_METRICS_ADDR`, default `127.0.0.1:9090`: where a process that runs workers
    /// but no API (`usher worker`) serves `/metrics` and `/health/*`.
    pub metrics_addr: SocketAddr,
}

impl WorkerConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| present(&lookup, name);
        let retry_base = Duration::from_millis(number(&get, "USHER_RETRY_BASE_MS", 1000, 1, 3_600_000)?);
        let retry_max = Duration::from_millis(number(&get, "USHER_RETRY_MAX_MS", 60_000, 1, 43_200_000)?);
        if retry_max < retry_base {
            return Err(ConfigError {
                variable: "USHER_RETRY_MAX_MS",
                reason: "must not be below USHER_RETRY_BASE_MS".to_owned(),
            });
        }
        let metrics_addr = match get("USHER_METRICS_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 9090)),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                variable: "USHER_METRICS_ADDR",
                reason: format!("expected an address like 127.0.0.1:9090, got {v:?}"),
            })?,
        };
        Ok(Self {
            metrics_addr,
            hold_ttl: Duration::from_secs(number(&get, "USHER_HOLD_TTL", 600, 1, 86_400)?),
            max_held_seats: number(&get, "USHER_MAX_HELD_SEATS", DEFAULT_MAX_HELD_SEATS as u64, 1, 1_000_000)? as usize,
            retry_base,
            retry_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<WorkerConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        WorkerConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = with(&[]).unwrap();
        assert_eq!(c.hold_ttl, Duration::from_secs(600));
        assert_eq!(c.max_held_seats, 20);
        assert_eq!(c.retry_base, Duration::from_millis(1000));
        assert_eq!(c.retry_max, Duration::from_millis(60_000));
        assert_eq!(c.metrics_addr.to_string(), "127.0.0.1:9090");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_eq!(with(&[("USHER_HOLD_TTL", "ten")]).unwrap_err().variable, "USHER_HOLD_TTL");
        assert_eq!(with(&[("USHER_METRICS_ADDR", ":9090")]).unwrap_err().variable, "USHER_METRICS_ADDR");
        let backwards = with(&[("USHER_RETRY_BASE_MS", "500"), ("USHER_RETRY_MAX_MS", "100")]);
        assert_eq!(backwards.unwrap_err().variable, "USHER_RETRY_MAX_MS");
        assert!(with(&[("USHER_HOLD_TTL", "30")]).is_ok());
        assert_eq!(with(&[("USHER_MAX_HELD_SEATS", "0")]).unwrap_err().variable, "USHER_MAX_HELD_SEATS");
        assert_eq!(with(&[("USHER_MAX_HELD_SEATS", "4")]).unwrap().max_held_seats, 4);
    }
}
