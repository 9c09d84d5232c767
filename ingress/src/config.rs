//! Ingress's section of the configuration: where the API listens, how long idempotency
//! keys are kept, and the JWT secrets. The binary composes it with the others.

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
}

impl IngressConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| present(&lookup, name);
        let http_addr = match get("USHER_HTTP_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                variable: "USHER_HTTP_ADDR",
                reason: format!("expected an address like 127.0.0.1:8080, got {v:?}"),
            })?,
        };
        Ok(Self {
            http_addr,
            idempotency_ttl: Duration::from_secs(number(&get, "USHER_IDEMPOTENCY_TTL", 86_400, 1, 30 * 86_400)?),
            jwt_secret: get("USHER_JWT_SECRET").map(SecretString::from),
            jwt_previous_secret: get("USHER_JWT_PREVIOUS_SECRET").map(SecretString::from),
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
        assert_eq!(with(&[("USHER_HTTP_ADDR", "nope")]).unwrap_err().variable, "USHER_HTTP_ADDR");
        assert_eq!(with(&[("USHER_IDEMPOTENCY_TTL", "0")]).unwrap_err().variable, "USHER_IDEMPOTENCY_TTL");
    }

    #[test]
    fn the_previous_jwt_secret_is_optional() {
        use secrecy::ExposeSecret;
        let c = with(&[("USHER_JWT_PREVIOUS_SECRET", "old-secret")]).unwrap();
        assert_eq!(c.jwt_previous_secret.as_ref().map(|p| p.expose_secret()), Some("old-secret"));
        let blank = with(&[("USHER_JWT_PREVIOUS_SECRET", "  ")]).unwrap();
        assert!(blank.jwt_previous_secret.is_none());
    }
}
