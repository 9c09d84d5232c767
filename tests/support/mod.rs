//! The whole app in-process on port 0 (ingress, every pool, the relay and the sweep) as a
//! `testkit::TestApp`, seeded with the demo catalog; and the `usher` binary as a CLI.
#![allow(dead_code)]

use infra::Backend;
use std::time::Duration;
pub use testkit::TestApp;
use usher::{App, Components, Config};

/// The `usher` binary of this build.
pub const USHER: &str = env!("CARGO_BIN_EXE_usher");

pub async fn spawn() -> TestApp {
    spawn_with(|_, _| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config, &mut Components)) -> TestApp {
    spawn_on(tweak, None).await
}

/// The app on a backend whose ports fail as `faults` says (see `infra::faults`).
pub async fn spawn_with_faults(faults: &infra::faults::Faults) -> TestApp {
    spawn_on(|_, _| {}, Some(faults)).await
}

async fn spawn_on(tweak: impl FnOnce(&mut Config, &mut Components), faults: Option<&infra::faults::Faults>) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = Config {
        backend: testkit::settings::app(dir.path()),
        ingress: testkit::settings::ingress(),
        workers: testkit::settings::workers(),
    };
    let mut components = Components::everything();
    components.sweep_every = Duration::from_millis(200);
    tweak(&mut config, &mut components);
    let settings = config.backend.clone();
    Backend::setup(&settings).await.expect("setup");
    let backend = Backend::connect(&settings).await.expect("the backend connects");
    let backend = match faults {
        Some(faults) => faults.wrap(backend),
        None => backend,
    };
    let app = App::build_on(config, components, backend).await.expect("the app builds");
    usher::demo::seed_if_empty(app.backend()).await.expect("the demo catalog");
    let addr = app.http_addr().expect("ingress runs");
    let (backend, secret) = (app.backend().clone(), app.secret().clone());
    TestApp::start(dir, settings, backend, secret, addr, |stop| app.run_until_stopped(stop))
}

/// The `usher` binary with `args`, set up for this app's backend.
pub fn cli_command(app: &TestApp, args: &[&str]) -> std::process::Command {
    let backend = match app.settings.backend {
        infra::BackendKind::Aws => "aws",
        infra::BackendKind::Embedded => "embedded",
    };
    let mut command = std::process::Command::new(USHER);
    command
        .args(args)
        .env("USHER_DATA_DIR", app.dir.path())
        .env("USHER_MAX_RECEIVES", app.settings.max_receives.to_string())
        .env("USHER_BACKEND", backend)
        .env("USHER_ENV", &app.settings.env);
    command
}

/// Runs the `usher` binary on this app's backend; returns (exit ok, stdout, stderr).
pub fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = cli_command(app, args).output().expect("usher runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
