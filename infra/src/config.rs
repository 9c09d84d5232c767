//! The backend's section of the configuration (docs/contract.md §0): which backend,
//! where its data lives, and its queues' redrive limit. Ingress and the workers own their
//! sections (`ingress::IngressConfig`, `workers::WorkerConfig`); the binary composes the
//! three, read once from the environment. The parsing helpers here are shared by all:
//! a bad value stops start-up with a message naming the variable.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Embedded,
    Aws,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: BackendKind,
    /// Where the embedded backend keeps its SQLite file (and `usher dev` its JWT secret).
    pub data_dir: PathBuf,
    /// Prefix of every AWS resource name: `<env>-booking-commands`, `<env>-events`, ….
    pub env: String,
    /// Receives a worker allows before it dead-letters a message itself; the queues'
    /// own redrive is one above it.
    pub max_receives: u32,
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
        let get = |name: &str| present(&lookup, name);
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
        let env = get("USHER_ENV").unwrap_or_else(|| "dev".to_owned());
        if !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || env.len() > 40 {
            return Err(ConfigError {
                variable: "USHER_ENV",
                reason: format!("expected up to 40 letters, digits, `-` or `_`, got {env:?}"),
            });
        }
        let max_receives = number(&get, "USHER_MAX_RECEIVES", 5, 1, 100)? as u32;
        Ok(Self {
            backend,
            data_dir: PathBuf::from(get("USHER_DATA_DIR").unwrap_or_else(|| "./.usher".to_owned())),
            env,
            max_receives,
        })
    }

    /// Settings for tests and tools: the defaults, with an embedded data dir.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let mut s = Self::from_lookup(|_| None).expect("the defaults are valid");
        s.data_dir = data_dir.into();
        s
    }
}

/// A variable's value, unless it is unset or blank.
pub fn present(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

/// A whole number from `min` to `max`, `default` when unset.
pub fn number(
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
        assert_eq!(s.env, "dev");
        assert_eq!(s.data_dir, PathBuf::from("./.usher"));
        assert_eq!(s.max_receives, 5);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        assert_eq!(with(&[("USHER_BACKEND", "redis")]).unwrap_err().variable, "USHER_BACKEND");
        assert_eq!(with(&[("USHER_MAX_RECEIVES", "0")]).unwrap_err().variable, "USHER_MAX_RECEIVES");
        assert_eq!(with(&[("USHER_ENV", "a b")]).unwrap_err().variable, "USHER_ENV");
        assert!(with(&[("USHER_BACKEND", "aws"), ("USHER_MAX_RECEIVES", "3")]).is_ok());
    }
}
