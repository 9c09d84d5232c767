//! `usher`: one binary for every role. Parses the command line, loads the settings once,
//! wires the backend and starts what was asked. See `usher --help`.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use domain::actor::Role;
use domain::queue::Queue;
use infra::{Backend, Settings};
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use usher::{App, Components, Pool};
use workers::dlq::{DeadLetters, ReplayOptions};

/// Usher: a queue-driven worker fleet behind a minimal ingress API.
///
/// Every setting is an environment variable (USHER_BACKEND, USHER_HTTP_ADDR, USHER_DATA_DIR,
/// USHER_ENV, USHER_JWT_SECRET, USHER_JWT_PREVIOUS_SECRET, USHER_HOLD_TTL,
/// USHER_IDEMPOTENCY_TTL, USHER_MAX_RECEIVES, USHER_RETRY_BASE_MS, USHER_RETRY_MAX_MS,
/// USHER_LOG); see the README.
#[derive(Debug, Parser)]
#[command(name = "usher", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Everything in one process: ingress, every worker pool, the sweep, a demo catalog.
    ///
    /// On start it runs `usher setup` (creating what is missing on the configured backend),
    /// unless --no-setup: then it runs on resources made elsewhere (e.g. by terraform's
    /// messaging and data modules) and fails at start-up if they are missing.
    Dev {
        /// Do not create queues, topic or tables; use what exists (also USHER_NO_SETUP=1).
        #[arg(long, env = "USHER_NO_SETUP")]
        no_setup: bool,
    },
    /// The HTTP API only.
    Ingress,
    /// Consumers only.
    Worker {
        #[arg(long, value_enum, default_value = "all")]
        pool: Pool,
        /// Receive loops per pool (each holds one batch of up to 10 in flight).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
    },
    /// Creates (idempotently) the queues, DLQs, topic, subscriptions and tables.
    Setup,
    /// Mints a JWT signed with the configured secret.
    Token {
        #[arg(long)]
        sub: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Lifetime: a number with a unit, s, m, h or d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
    },
    /// Exits 0 when the local server answers 200 on /health/live: the container's
    /// HEALTHCHECK, with no curl or wget in the image.
    Health {
        /// The address to check; USHER_HTTP_ADDR by default (0.0.0.0 means this host).
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
    },
    /// Lists, inspects, replays and purges dead-letter queues.
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCmd {
    /// Every dead-letter queue with its depth.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Prints dead messages without consuming them.
    Peek {
        /// The logical queue name, with or without `-dlq` (e.g. booking-commands).
        queue: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Moves messages back to their source queue (send before delete).
    Replay {
        queue: String,
        #[arg(long)]
        limit: Option<usize>,
        /// Messages per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Only messages of this command or event type.
        #[arg(long = "type")]
        message_type: Option<String>,
        /// Count what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Deletes every message in the DLQ.
    Purge {
        queue: String,
        /// Required: purging cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("expected customer, agent or admin, got {s:?}"))
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("expected a duration like 30m or 1h, got {s:?}"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    if secs == 0 || secs > 366 * 86_400 {
        return Err("must be between 1s and 366d".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

fn parse_queue(name: &str) -> anyhow::Result<Queue> {
    Queue::parse(name).with_context(|| {
        let known: Vec<&str> = Queue::ALL.iter().map(|q| q.name()).collect();
        format!("unknown queue {name:?}; expected one of {}", known.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("usher: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usher: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("USHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command {
        Cmd::Dev { no_setup } => {
            init_logging();
            serve(settings, Components::everything(), Some(Dev { setup: !no_setup })).await
        }
        Cmd::Ingress => {
            init_logging();
            serve(settings, Components { pools: Vec::new(), sweep: false, ..Components::everything() }, None).await
        }
        Cmd::Worker { pool, concurrency } => {
            init_logging();
            let components = Components {
                ingress: false,
                pools: vec![pool],
                concurrency: concurrency.into(),
                ..Components::everything()
            };
            serve(settings, components, None).await
        }
        Cmd::Setup => {
            Backend::setup(&settings).await.context("setup failed")?;
            println!("setup complete on the {:?} backend", settings.backend);
            Ok(())
        }
        Cmd::Token { sub, role, ttl } => {
            if sub.is_empty() || sub.len() > 255 {
                bail!("--sub must be 1 to 255 characters");
            }
            let secret = usher::secret::resolve(&settings)?;
            println!("{}", ingress::auth::mint_token(&secret, &sub, role, ttl));
            Ok(())
        }
        Cmd::Dlq { command } => dlq(settings, command).await,
        Cmd::Health { addr } => health(addr.unwrap_or(settings.http_addr)),
    }
}

/// What `usher dev` adds to serving.
struct Dev {
    /// Run `usher setup` first.
    setup: bool,
}

async fn serve(settings: Settings, components: Components, dev: Option<Dev>) -> anyhow::Result<()> {
    // Take over SIGTERM and SIGINT before anything is announced, so a signal sent right
    // after the address is printed still shuts down gracefully.
    let signals = Signals::install()?;
    if dev.as_ref().is_some_and(|d| d.setup) {
        Backend::setup(&settings).await.context("setup failed")?;
    }
    let skipped_setup = dev.as_ref().is_some_and(|d| !d.setup);
    let dev = dev.is_some();
    let missing_hint = format!(
        "cannot seed the demo catalog (with --no-setup the queues, topic and tables of USHER_ENV={} must \
         exist already: run `usher setup` or apply terraform's messaging and data modules)",
        settings.env
    );
    let app = App::build(settings, components).await?;
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
    if let Some(addr) = app.http_addr() {
        println!("usher is listening on http://{addr}");
        if dev {
            let token = ingress::auth::mint_token(app.secret(), "admin", Role::Admin, Duration::from_secs(86_400));
            println!("admin token (24 h): {token}");
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

async fn dlq(settings: Settings, command: DlqCmd) -> anyhow::Result<()> {
    let backend = Backend::connect(&settings).await.context("cannot connect to the backend")?;
    let dead = DeadLetters::new(backend);
    match command {
        DlqCmd::List { json } => {
            let depths = dead.list().await?;
            if json {
                println!("{}", serde_json::to_string(&depths)?);
            } else {
                for d in depths {
                    println!("{} {}", d.queue, d.depth);
                }
            }
        }
        DlqCmd::Peek { queue, limit, json } => {
            let queue = parse_queue(&queue)?;
            if limit == 0 || limit > 1000 {
                bail!("--limit must be between 1 and 1000");
            }
            let messages = dead.peek(queue, limit).await?;
            if json {
                println!("{}", serde_json::to_string(&messages)?);
            } else if messages.is_empty() {
                println!("{} is empty", queue.dlq().name());
            } else {
                for m in messages {
                    println!(
                        "{} request={} type={} receives={} failed_at={} reason={:?}\n  {}",
                        m.message_id,
                        m.request_id.as_deref().unwrap_or("-"),
                        m.message_type.as_deref().unwrap_or("-"),
                        m.receive_count,
                        m.failed_at.as_deref().unwrap_or("-"),
                        m.failure_reason.as_deref().unwrap_or("-"),
                        m.body
                    );
                }
            }
        }
        DlqCmd::Replay { queue, limit, rate, message_type, dry_run } => {
            let queue = parse_queue(&queue)?;
            if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                bail!("--rate must be a positive number of messages per second");
            }
            let options = ReplayOptions { limit, rate, message_type, dry_run };
            let report = dead.replay(queue, &options).await?;
            let verb = if dry_run { "would move" } else { "moved" };
            println!("{verb} {} skipped {} failed {}", report.moved, report.skipped, report.failed);
            if report.failed > 0 {
                bail!("{} messages could not be replayed; they are still in {}", report.failed, queue.dlq().name());
            }
        }
        DlqCmd::Purge { queue, yes } => {
            let queue = parse_queue(&queue)?;
            if !yes {
                bail!("purging {} cannot be undone; pass --yes", queue.dlq().name());
            }
            dead.purge(queue).await?;
            println!("purged {}", queue.dlq().name());
        }
    }
    Ok(())
}

/// One plain HTTP/1.1 GET of /health/live with a short timeout; any answer but 200 fails.
fn health(mut addr: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let timeout = Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).with_context(|| format!("no answer from {addr}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.lines().next().unwrap_or("").to_owned();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{addr} answered {status:?} on /health/live");
    }
    println!("ok");
    Ok(())
}
