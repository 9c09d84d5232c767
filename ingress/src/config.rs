//! Ingress's section of the configuration: where the API listens, how long idempotency
//! keys are kept, the JWT secrets and claims, and the limits that keep hostile clients
//! in check (rate, connections, long polls, timeouts). The binary composes it with the
//! others.

use crate::auth::Audience;
use infra::config::{ConfigError, number, present};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// `USHER_HTTP_ADDR`, default `127.0.0.1:8080` (port 0: any free port).
    pub http_addr: SocketAddr,
    /// `USHER_IDEMPOTENCY_TTL` seconds, default a day.
    pub idempotency_ttl: Duration,
    /// HS256 secret for JWTs. `usher dev` creates one in the data dir when unset.
    pub jwt_secret: Option<SecretString>,
    /// The secret before the last rotation (`USHER_JWT_PREVIOUS_SECRET`): tokens signed
    /// with it are still accepted, so a rotation logs nobody out. Tokens are only ever
    /// minted with `jwt_secret`.
    pub jwt_previous_secret: Option<SecretString>,
    /// `USHER_JWT_ISSUER`: when set, tokens must carry this `iss` (and `usher token` puts it in).
    pub jwt_issuer: Option<String>,
    /// `USHER_JWT_AUDIENCE`: when set, tokens must carry this `aud` (and `usher token` puts it in).
    pub jwt_audience: Option<String>,
    /// `USHER_RATE_LIMIT`: commands per second per caller (`sub`), default 20; 0 is unlimited.
    pub rate_limit: u32,
    /// `USHER_RATE_BURST`: how many commands a caller may send at once, default 40.
    pub rate_burst: u32,
    /// `USHER_MAX_CONNECTIONS`: open connections served at once, default 4096; more wait
    /// in the listen backlog.
    pub max_connections: usize,
    /// `USHER_MAX_WAITERS`: concurrent long polls (`?wait=`), default 1024; past it a status
    /// document is answered at once.
    pub max_waiters: usize,
    /// How long a client may take to send a request's headers (10 s; tests shorten it).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (30 s; tests shorten it).
    pub body_timeout: Duration,
    /// The longest a request may take from its first header to its answer (60 s: the body
    /// timeout plus the longest long poll, with room to spare; tests shorten it). Past it
    /// the request is answered 503.
    pub request_timeout: Duration,
    /// How long a graceful shutdown waits for open connections before dropping them (25 s,
    /// so the process is gone within 30 s).
    pub shutdown_grace: Duration,
}

/// The shortest HS256 secret accepted: 256 bits, the hash's own size (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

impl IngressConfig {
    /// The `iss` and `aud` every token minted for this API carries: `usher token`,
    /// `usher bench`, and `usher dev`'s admin token and `POST /dev/token`.
    pub fn audience(&self) -> Audience {
        Audience { issuer: self.jwt_issuer.clone(), audience: self.jwt_audience.clone() }
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| present(&lookup, name);
        let http_addr = match get("USHER_HTTP_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                variable: "USHER_HTTP_ADDR",
                reason: format!("expected an address like 127.0.0.1:8080, got {v:?}"),
            })?,
        };
        let secret = |variable: &'static str| match get(variable) {
            Some(v) if v.len() < MIN_SECRET_BYTES => Err(ConfigError {
                variable,
                reason: format!("must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"),
            }),
            v => Ok(v.map(SecretString::from)),
        };
        Ok(Self {
            http_addr,
            idempotency_ttl: Duration::from_secs(number(&get, "USHER_IDEMPOTENCY_TTL", 86_400, 1, 30 * 86_400)?),
            jwt_secret: secret("USHER_JWT_SECRET")?,
            jwt_previous_secret: secret("USHER_JWT_PREVIOUS_SECRET")?,
            jwt_issuer: get("USHER_JWT_ISSUER").map(|v| v.trim().to_owned()),
            jwt_audience: get("USHER_JWT_AUDIENCE").map(|v| v.trim().to_owned()),
            rate_limit: number(&get, "USHER_RATE_LIMIT", 20, 0, 1_000_000)? as u32,
            rate_burst: number(&get, "USHER_RATE_BURST", 40, 1, 1_000_000)? as u32,
            max_connections: number(&get, "USHER_MAX_CONNECTIONS", 4096, 1, 1_000_000)? as usize,
            max_waiters: number(&get, "USHER_MAX_WAITERS", 1024, 0, 1_000_000)? as usize,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(25),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<IngressConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        IngressConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = with(&[]).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.idempotency_ttl, Duration::from_secs(86_400));
        assert!(c.jwt_secret.is_none() && c.jwt_previous_secret.is_none());
        assert!(c.jwt_issuer.is_none() && c.jwt_audience.is_none());
        assert_eq!((c.rate_limit, c.rate_burst), (20, 40));
        assert_eq!((c.max_connections, c.max_waiters), (4096, 1024));
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.body_timeout, Duration::from_secs(30));
        assert_eq!(c.request_timeout, Duration::from_secs(60));
        assert_eq!(c.shutdown_grace, Duration::from_secs(25));
        assert_eq!(with(&[("USHER_RATE_LIMIT", "0")]).unwrap().rate_limit, 0, "0 is unlimited");
        assert_eq!(with(&[("USHER_RATE_BURST", "0")]).unwrap_err().variable, "USHER_RATE_BURST");
        assert_eq!(with(&[("USHER_MAX_CONNECTIONS", "lots")]).unwrap_err().variable, "USHER_MAX_CONNECTIONS");
        assert_eq!(with(&[("USHER_HTTP_ADDR", "nope")]).unwrap_err().variable, "USHER_HTTP_ADDR");
        assert_eq!(with(&[("USHER_IDEMPOTENCY_TTL", "0")]).unwrap_err().variable, "USHER_IDEMPOTENCY_TTL");
    }

    #[test]
    fn the_previous_jwt_secret_is_optional() {
        use secrecy::ExposeSecret;
        let old = "old-secret-old-secret-old-secret";
        let c = with(&[("USHER_JWT_PREVIOUS_SECRET", old)]).unwrap();
        assert_eq!(c.jwt_previous_secret.as_ref().map(|p| p.expose_secret()), Some(old));
        let blank = with(&[("USHER_JWT_PREVIOUS_SECRET", "  ")]).unwrap();
        assert!(blank.jwt_previous_secret.is_none());
    }

    #[test]
    fn a_short_secret_stops_start_up_naming_it() {
        let short = with(&[("USHER_JWT_SECRET", "hunter2")]).unwrap_err();
        assert_eq!(short.variable, "USHER_JWT_SECRET");
        assert!(!short.reason.contains("hunter2"), "the value never prints");
        let previous = with(&[("USHER_JWT_SECRET", &"k".repeat(32)), ("USHER_JWT_PREVIOUS_SECRET", "old")]);
        assert_eq!(previous.unwrap_err().variable, "USHER_JWT_PREVIOUS_SECRET");
        assert!(with(&[("USHER_JWT_SECRET", &"k".repeat(32))]).unwrap().jwt_secret.is_some());
    }
}
