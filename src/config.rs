//! The whole configuration, composed of each crate's own section and read once from the
//! environment: the backend's (`infra::Settings`), ingress's and the workers'. Every
//! default has one home, in the crate that uses it.

use infra::{ConfigError, Settings};
use ingress::IngressConfig;
use std::path::PathBuf;
use workers::config::WorkerConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub backend: Settings,
    pub ingress: IngressConfig,
    pub workers: WorkerConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every section through `lookup`, so tests can pass their own environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            backend: Settings::from_lookup(&lookup)?,
            ingress: IngressConfig::from_lookup(&lookup)?,
            workers: WorkerConfig::from_lookup(&lookup)?,
        })
    }

    /// The defaults, with an embedded data dir (tests and tools).
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::from_lookup(|_| None).expect("the defaults are valid");
        config.backend.data_dir = data_dir.into();
        config
    }
}
