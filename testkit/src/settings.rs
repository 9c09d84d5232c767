//! Settings for a test: one prefix generator, so no two tests share a queue, a topic or a
//! table on one moto server, and one switch between the embedded and the aws backend.

use infra::{Backend, BackendKind, Settings};
use ingress::IngressConfig;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;
use workers::config::WorkerConfig;

/// A fresh resource prefix (`USHER_ENV`): `t` and twelve hex digits.
pub fn prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// An app's backend settings on `dir`. With `USHER_TEST_BACKEND=aws` (and
/// `AWS_ENDPOINT_URL` pointing at moto, as `scripts/test.sh` arranges) the aws backend
/// under a fresh prefix; otherwise embedded. Three receives, so failure paths end soon.
pub fn app(dir: &Path) -> Settings {
    let mut s = Settings::embedded(dir);
    if std::env::var("USHER_TEST_BACKEND").as_deref() == Ok("aws") {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "USHER_TEST_BACKEND=aws needs AWS_ENDPOINT_URL (run scripts/test.sh)"
        );
        s.backend = BackendKind::Aws;
        s.env = prefix();
    }
    s.max_receives = 3;
    s
}

/// Ingress's section for a test: the defaults, on port 0, with a rate limit no test's
/// burst of commands reaches (the rate limit's own tests set theirs).
pub fn ingress() -> IngressConfig {
    let mut c = IngressConfig::from_lookup(|_| None).expect("the defaults are valid");
    c.http_addr = "127.0.0.1:0".parse().expect("an address");
    c.rate_limit = 100_000;
    c.rate_burst = 100_000;
    c
}

/// The workers' section for a test: fast retries, so failure paths finish in test time.
pub fn workers() -> WorkerConfig {
    let mut c = WorkerConfig::from_lookup(|_| None).expect("the defaults are valid");
    c.retry_base = Duration::from_millis(20);
    c.retry_max = Duration::from_millis(100);
    c
}

/// The aws backend on moto under a fresh prefix, as the environment would configure it;
/// `None` (and why, on stderr) when `AWS_ENDPOINT_URL` is unset, so a plain `cargo test`
/// needs no moto.
pub fn moto(max_receives: u32) -> Option<Settings> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        eprintln!("skipped: AWS_ENDPOINT_URL is unset (run under scripts/moto.sh -- cargo test ...)");
        return None;
    }
    let env = prefix();
    let max = max_receives.to_string();
    let settings = Settings::from_lookup(|name| match name {
        "USHER_BACKEND" => Some("aws".to_owned()),
        "USHER_ENV" => Some(env.clone()),
        "USHER_MAX_RECEIVES" => Some(max.clone()),
        _ => None,
    })
    .expect("test settings are valid");
    Some(settings)
}

/// A fresh embedded backend in its own temp dir, removed on drop.
pub struct Embedded {
    pub backend: Backend,
    pub dir: TempDir,
}

impl Embedded {
    pub async fn open() -> Embedded {
        Self::open_with(|_| {}).await
    }

    /// As [`Embedded::open`], with the settings changed by `tweak` first.
    pub async fn open_with(tweak: impl FnOnce(&mut Settings)) -> Embedded {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut settings = Settings::embedded(dir.path());
        tweak(&mut settings);
        let backend = Backend::connect(&settings).await.expect("the embedded backend opens");
        Embedded { backend, dir }
    }
}
