//! The one typed configuration, read once from the environment (docs/contract.md §0).
//! A bad value stops start-up with a message naming the variable.

use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Embedded,
    Aws,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: BackendKind,
    pub http_addr: SocketAddr,
    /// Where the embedded backend keeps its SQLite file (and `usher dev` its JWT secret).
    pub data_dir: PathBuf,
    /// Prefix of every AWS resource name: `<env>-booking-commands`, `<env>-events`, ….
    pub env: String,
    /// HS256 secret for JWTs. `usher dev` creates one in the data dir when unset.
    pub jwt_secret: Option<SecretString>,
    /// The secret before the last rotation (`USHER_JWT_PREVIOUS_SECRET`): tokens signed
    /// with it are still accepted, so a rotation logs nobody out. Tokens are only ever
    /// minted with `jwt_secret`.
    pub jwt_previous_secret: Option<SecretString>,
    pub hold_ttl: Duration,
    pub idempotency_ttl: Duration,
    /// Receives a worker allows before it dead-letters a message itself.
    pub max_receives: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let backend = match get("USHER_BACKEND").as_deref().map(str::trim) {
            None | Some("embedded") => BackendKind::Embedded,
            Some("aws") => BackendKind::Aws,
            Some(other) => {
                return Err(ConfigError {
                    variable: "USHER_BACKEND",
                    reason: format!("expected `embedded` or `aws`, got {other:?}"),
                });
            }
        };
        let http_addr = match get("USHER_HTTP_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                variable: "USHER_HTTP_ADDR",
                reason: format!("expected an address like 127.0.0.1:8080, got {v:?}"),
            })?,
        };
        let env = get("USHER_ENV").unwrap_or_else(|| "dev".to_owned());
        if !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || env.len() > 40 {
            return Err(ConfigError {
                variable: "USHER_ENV",
                reason: format!("expected up to 40 letters, digits, `-` or `_`, got {env:?}"),
            });
        }
        let max_receives = number(&get, "USHER_MAX_RECEIVES", 5, 1, 100)? as u32;
        let retry_base = Duration::from_millis(number(&get, "USHER_RETRY_BASE_MS", 1000, 1, 3_600_000)?);
        let retry_max = Duration::from_millis(number(&get, "USHER_RETRY_MAX_MS", 60_000, 1, 43_200_000)?);
        if retry_max < retry_base {
            return Err(ConfigError {
                variable: "USHER_RETRY_MAX_MS",
                reason: "must not be below USHER_RETRY_BASE_MS".to_owned(),
            });
        }
        Ok(Self {
            backend,
            http_addr,
            data_dir: PathBuf::from(get("USHER_DATA_DIR").unwrap_or_else(|| "./.usher".to_owned())),
            env,
            jwt_secret: get("USHER_JWT_SECRET").map(SecretString::from),
            jwt_previous_secret: get("USHER_JWT_PREVIOUS_SECRET").map(SecretString::from),
            hold_ttl: Duration::from_secs(number(&get, "USHER_HOLD_TTL", 600, 1, 86_400)?),
            idempotency_ttl: Duration::from_secs(number(&get, "USHER_IDEMPOTENCY_TTL", 86_400, 1, 30 * 86_400)?),
            max_receives,
            retry_base,
            retry_max,
        })
    }

    /// Settings for tests and tools: the defaults, with an embedded data dir.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let mut s = Self::from_lookup(|_| None).expect("the defaults are valid");
        s.data_dir = data_dir.into();
        s
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(variable) else { return Ok(default) };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError { variable, reason: format!("expected a whole number from {min} to {max}, got {raw:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = with(&[]).unwrap();
        assert_eq!(s.backend, BackendKind::Embedded);
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.env, "dev");
        assert_eq!(s.hold_ttl, Duration::from_secs(600));
        assert_eq!(s.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(s.max_receives, 5);
        assert_eq!(s.retry_base, Duration::from_millis(1000));
        assert_eq!(s.retry_max, Duration::from_millis(60_000));
        assert!(s.jwt_previous_secret.is_none());
    }

    #[test]
    fn the_previous_jwt_secret_is_optional() {
        use secrecy::ExposeSecret;
        let s = with(&[("USHER_JWT_PREVIOUS_SECRET", "old-secret")]).unwrap();
        assert_eq!(s.jwt_previous_secret.as_ref().map(|p| p.expose_secret()), Some("old-secret"));
        let blank = with(&[("USHER_JWT_PREVIOUS_SECRET", "  ")]).unwrap();
        assert!(blank.jwt_previous_secret.is_none());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_eq!(with(&[("USHER_HOLD_TTL", "ten")]).unwrap_err().variable, "USHER_HOLD_TTL");
        assert_eq!(with(&[("USHER_BACKEND", "redis")]).unwrap_err().variable, "USHER_BACKEND");
        assert_eq!(with(&[("USHER_HTTP_ADDR", "nope")]).unwrap_err().variable, "USHER_HTTP_ADDR");
        assert_eq!(with(&[("USHER_MAX_RECEIVES", "0")]).unwrap_err().variable, "USHER_MAX_RECEIVES");
        assert_eq!(with(&[("USHER_ENV", "a b")]).unwrap_err().variable, "USHER_ENV");
        assert!(with(&[("USHER_BACKEND", "aws"), ("USHER_HOLD_TTL", "30")]).is_ok());
    }
}
