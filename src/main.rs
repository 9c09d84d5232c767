//! `usher`: one binary for every role. Parses the command line, loads the settings once,
//! wires the backend and starts what was asked. See `usher --help`.

/// `println!` that hands back the write's error instead of panicking, so that `usher …
/// | head` ends with a one-line message when the reader goes away.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod bench;
mod cli;
mod operate;

use anyhow::Context;
use cli::{Cli, Cmd};
use domain::actor::Role;
use infra::Backend;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use usher::{App, Components, Config};

usher::jemalloc!();

fn main() -> ExitCode {
    let cli = match Cli::try_parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        // --help and --version: printed on stdout, and a success.
        Err(asked) if !asked.use_stderr() => {
            let _ = asked.print();
            return ExitCode::SUCCESS;
        }
        Err(mistake) => {
            eprintln!("usher: {}", cli::one_line(&mistake));
            return ExitCode::from(u8::try_from(mistake.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("usher: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(run(cli));
    // Spans still buffered for the OTLP exporter leave before the process does.
    infra::logging::flush();
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usher: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command {
        Cmd::Dev { no_setup } => {
            infra::logging::init()?;
            let components = Components { dev_tokens: true, ..Components::everything() };
            serve(config, components, Some(Dev { setup: !no_setup })).await
        }
        Cmd::Ingress => {
            infra::logging::init()?;
            let components =
                Components { pools: Vec::new(), sweep: false, dev_secret: false, ..Components::everything() };
            serve(config, components, None).await
        }
        Cmd::Worker { pool, concurrency } => {
            infra::logging::init()?;
            let components = Components {
                ingress: false,
                pools: vec![pool],
                concurrency: concurrency.into(),
                dev_secret: false,
                ..Components::everything()
            };
            serve(config, components, None).await
        }
        Cmd::Setup => {
            Backend::setup(&config.backend).await.context("setup failed")?;
            out!("setup complete on the {:?} backend", config.backend.backend)?;
            Ok(())
        }
        Cmd::Token { sub, role, ttl } => {
            let secret = usher::secret::resolve(&config, usher::secret::Source::DevFile)?;
            let to = config.ingress.audience();
            out!("{}", ingress::auth::mint_token_for(&secret, &sub, role, ttl, &to))?;
            Ok(())
        }
        Cmd::Bench { url, requests, connections, rate, scenario, seats } => {
            let secret = usher::secret::resolve(&config, usher::secret::Source::DevFile)?;
            let to = config.ingress.audience();
            let url = url.unwrap_or_else(|| format!("http://{}", config.ingress.http_addr));
            let plan = bench::Plan {
                url,
                requests: usize::try_from(requests)?,
                connections: connections.into(),
                rate,
                scenario,
                seats: seats.into(),
            };
            bench::run(bench::Minter { secret, to }, plan).await
        }
        Cmd::Dlq { command } => operate::dlq(config.backend, command).await,
        Cmd::Status { watch, json } => operate::status(config.backend, watch, json).await,
        Cmd::Health { addr } => operate::health(addr.unwrap_or(config.ingress.http_addr)),
    }
}

/// How long `usher ingress` and `usher worker` wait for their backend to answer at
/// start-up before they give up (a container then restarts; an outage later is ridden out).
const BACKEND_START_WAIT: Duration = Duration::from_secs(20);

/// What `usher dev` adds to serving.
struct Dev {
    /// Run `usher setup` first.
    setup: bool,
}

async fn serve(config: Config, components: Components, dev: Option<Dev>) -> anyhow::Result<()> {
    // Take over SIGTERM and SIGINT before anything is announced, so a signal sent right
    // after the address is printed still shuts down gracefully.
    let signals = Signals::install()?;
    if dev.as_ref().is_some_and(|d| d.setup) {
        Backend::setup(&config.backend).await.context("setup failed")?;
    }
    let skipped_setup = dev.as_ref().is_some_and(|d| !d.setup);
    let dev = dev.is_some();
    let missing_hint = format!(
        "cannot seed the demo catalog (with --no-setup the queues, topic and tables of USHER_ENV={} must \
         exist already: run `usher setup` or apply terraform's messaging and data modules)",
        config.backend.env
    );
    let audience = config.ingress.audience();
    let app = App::build(config, components).await?;
    if !dev {
        // `usher dev` has just set the backend up (or, with --no-setup, seeds it below).
        app.wait_for_backend(BACKEND_START_WAIT).await?;
    }
    let seeded = if dev {
        usher::demo::seed_if_empty(app.backend()).await.with_context(|| {
            if skipped_setup { missing_hint.clone() } else { "cannot seed the demo catalog".to_owned() }
        })?
    } else {
        false
    };
    if seeded {
        tracing::info!("seeded the demo catalog");
    }
    if let Some(addr) = app.metrics_addr() {
        out!("usher serves /metrics and /health on http://{addr}")?;
    }
    if let Some(addr) = app.http_addr() {
        out!("usher is listening on http://{addr}")?;
        if dev {
            let page = browsable(addr);
            out!("open {page}/ in a browser to book seats (sign in with any name), {page}/ops for the ops view")?;
            // The token comes last: launchers (testkit::Dev, scripts) stop reading there.
            let token = ingress::auth::mint_token_for(
                app.secret(),
                "admin",
                Role::Admin,
                Duration::from_secs(86_400),
                &audience,
            );
            out!("admin token (24 h): {token}")?;
        }
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("stopping: finishing in-flight work");
        stop.cancel();
    });
    app.run_until_stopped(shutdown).await
}

/// The address a browser on this machine can open: an unspecified bind address
/// (`0.0.0.0`) is reached through loopback.
fn browsable(mut addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    format!("http://{addr}")
}

/// SIGTERM and SIGINT, registered when installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
