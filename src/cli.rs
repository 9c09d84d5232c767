//! The command line: what `usher --help` shows, and the checks of each argument. Parsing
//! only; `main` wires what was asked.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use domain::actor::Role;
use domain::queue::Queue;
use std::time::Duration;
use usher::Pool;
use workers::consumer::DEFAULT_RECEIVE_LOOPS;

pub(crate) use crate::bench::Scenario;

/// Usher: a queue-driven worker fleet behind a minimal ingress API.
///
/// Every setting is an environment variable (USHER_BACKEND, USHER_HTTP_ADDR, USHER_DATA_DIR,
/// USHER_ENV, USHER_JWT_SECRET, USHER_JWT_PREVIOUS_SECRET, USHER_JWT_ISSUER,
/// USHER_JWT_AUDIENCE, USHER_HOLD_TTL, USHER_MAX_HELD_SEATS, USHER_IDEMPOTENCY_TTL,
/// USHER_MAX_RECEIVES, USHER_RETRY_BASE_MS, USHER_RETRY_MAX_MS, USHER_RATE_LIMIT (0: no
/// limit), USHER_RATE_BURST, USHER_MAX_CONNECTIONS, USHER_MAX_WAITERS, USHER_METRICS_ADDR,
/// USHER_LOG, OTEL_EXPORTER_OTLP_ENDPOINT); see the README. USHER_JWT_SECRET (at least 32
/// bytes) is required by `usher ingress`; only `usher dev` makes its own.
#[derive(Debug, Parser)]
#[command(name = "usher", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Everything in one process: ingress, every worker pool, the sweep, a demo catalog.
    ///
    /// On start it runs `usher setup` (creating what is missing on the configured backend),
    /// unless --no-setup: then, on the aws backend, it runs on resources made elsewhere (e.g.
    /// by terraform's messaging and data modules) and fails at start-up if they are
    /// missing. The embedded store is one file, created when absent either way.
    Dev {
        /// Do not create queues, topic or tables; use what exists (also USHER_NO_SETUP=1).
        #[arg(long, env = "USHER_NO_SETUP")]
        no_setup: bool,
    },
    /// The HTTP API only.
    Ingress,
    /// Consumers only. With no API to serve them, /metrics and /health/* are served on
    /// USHER_METRICS_ADDR (default 127.0.0.1:9090).
    Worker {
        #[arg(long, value_enum, default_value = "all")]
        pool: Pool,
        /// The most receive loops per pool (each holds one batch in flight: up to 10 messages
        /// on SQS, 50 on embedded); the loops follow the backlog, down to one when the queue
        /// is idle.
        #[arg(long, default_value_t = DEFAULT_RECEIVE_LOOPS as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
    },
    /// Creates (idempotently) the queues, DLQs, topic, subscriptions and tables.
    Setup,
    /// Mints a JWT signed with the configured secret.
    Token {
        /// The caller's id: 1 to 255 visible ASCII characters (no spaces), as the API
        /// requires of a token's `sub`.
        #[arg(long, value_parser = parse_sub)]
        sub: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Lifetime: a number with a unit, s, m, h or d; a bare number is seconds.
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
    /// The load generator: drives a running Usher over HTTP, reports accepted/s, accept
    /// latency, terminal/s and accept→terminal latency, then checks the invariants (exits
    /// non-zero if one is broken). Tokens are minted with the configured secret.
    Bench {
        /// Usher's base URL, http:// or https://; http://USHER_HTTP_ADDR by default.
        #[arg(long)]
        url: Option<String>,
        /// Scenario units to run: one command each, or one flow (1–2 commands) in `mixed`.
        #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        requests: u64,
        /// Concurrent connections (closed loop), or the most requests in flight (open loop).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
        connections: u16,
        /// Open loop: start requests at this rate per second instead of as fast as answered.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<f64>,
        #[arg(long, value_enum, default_value = "holds")]
        scenario: Scenario,
        /// Seats of the contended show (`contention`): a multiple of 50 above 50.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=26_000))]
        seats: u16,
    },
    /// Every queue (visible, in flight, oldest message age, DLQ depth) and the outbox backlog.
    ///
    /// On AWS the oldest age is unknown ("-", null in JSON): SQS cannot tell it without
    /// receiving messages; CloudWatch's ApproximateAgeOfOldestMessage alarm watches it.
    Status {
        /// Redraw every 2 s, like top; q (or Ctrl-C) quits.
        #[arg(long)]
        watch: bool,
        /// Print {"queues": [...], "outbox": {...}} as JSON.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
    },
    /// Lists, inspects, replays and purges dead-letter queues.
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCmd {
    /// Every dead-letter queue with its depth.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Prints dead messages without consuming them.
    Peek {
        /// The logical queue name, with or without `-dlq` (e.g. booking-commands).
        queue: String,
        /// How many to print, 1 to 1000.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Moves messages back to their source queue (send before delete).
    Replay {
        queue: String,
        /// Move at most this many (at least 1); every message when left out.
        #[arg(long)]
        limit: Option<usize>,
        /// Messages per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Only messages of this command or event type (booking.confirm,
        /// usher.booking.confirmed, ...); a type no message can have is refused.
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

impl Cli {
    /// Parses `args` (the first is the program's name). A command that lacks its
    /// subcommand (`usher dlq`) is an error like any other, not a page of help, so that
    /// every mistake reads as one line (see [`one_line`]).
    pub(crate) fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        fn no_help_for_missing(command: clap::Command) -> clap::Command {
            command.arg_required_else_help(false).mut_subcommands(no_help_for_missing)
        }
        let matches = no_help_for_missing(Cli::command()).try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }
}

/// A command-line mistake as one line: clap's message and its hints (the valid values, a
/// similar name), without the usage and the pointer to `--help` that follow them.
pub(crate) fn one_line(error: &clap::Error) -> String {
    error
        .render()
        .to_string()
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:"))
        .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("expected customer, agent or admin, got {s:?}"))
}

/// A token's subject as the API accepts it, so that `usher token` never mints a token
/// every request would refuse.
fn parse_sub(s: &str) -> Result<String, String> {
    if ingress::routes::is_id(s) {
        Ok(s.to_owned())
    } else {
        Err(format!("expected 1 to 255 visible ASCII characters (no spaces), got {s:?}"))
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1_000_000.0 => Ok(r),
        _ => Err(format!("expected a rate above 0 and at most 1000000 per second, got {s:?}")),
    }
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("expected a duration like 30m or 1h, got {s:?}"))?;
    let per_unit: u64 = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    const LONGEST: &str = "must be between 1s and 366d";
    let secs = n.checked_mul(per_unit).ok_or_else(|| LONGEST.to_owned())?;
    if secs == 0 || secs > 366 * 86_400 {
        return Err(LONGEST.to_owned());
    }
    Ok(Duration::from_secs(secs))
}

pub(crate) fn parse_queue(name: &str) -> anyhow::Result<Queue> {
    Queue::parse(name).with_context(|| {
        let known: Vec<&str> = Queue::ALL.iter().map(|q| q.name()).collect();
        format!("unknown queue {name:?}; expected one of {}", known.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_is_checked_for_overflow_and_range() {
        assert_eq!(parse_ttl("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("366d"), Ok(Duration::from_secs(366 * 86_400)));
        for bad in ["0s", "367d", "18446744073709551615d", "5124095576030432h", "99999999999999999999", "1w", "h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_command_line_mistake_is_one_line() {
        let cases: [(&[&str], &str); 11] = [
            (&["dlq"], "'usher dlq' requires a subcommand"),
            (&[], "'usher' requires a subcommand"),
            (&["bogus"], "unrecognized subcommand 'bogus'"),
            (&["token", "--sub", "x"], "--role <ROLE>"),
            (&["token", "--sub", "x", "--role", "king"], "expected customer, agent or admin"),
            (&["token", "--sub", "a b", "--role", "customer"], "expected 1 to 255 visible ASCII characters"),
            (&["token", "--sub", "café", "--role", "customer"], "expected 1 to 255 visible ASCII characters"),
            (&["token", "--sub", "", "--role", "customer"], "expected 1 to 255 visible ASCII characters"),
            (&["bench", "--rate", "0"], "expected a rate above 0 and at most 1000000 per second"),
            (&["worker", "--pool", "zz"], "[possible values: booking, tickets, notifications, analytics, all]"),
            (&["dlq", "peek", "booking-commands", "--limit", "abc"], "'--limit <LIMIT>'"),
        ];
        for (args, expected) in cases {
            let error = Cli::try_parse_args(std::iter::once("usher").chain(args.iter().copied())).expect_err(expected);
            assert!(error.use_stderr() && error.exit_code() == 2, "{args:?}");
            let line = one_line(&error);
            assert!(line.contains(expected) && !line.contains('\n') && !line.contains("Usage"), "{args:?}: {line}");
        }
    }

    #[test]
    fn help_and_version_are_not_mistakes() {
        for asked in ["--help", "--version", "help"] {
            let answer = Cli::try_parse_args(["usher", asked]).expect_err(asked);
            assert!(!answer.use_stderr() && answer.exit_code() == 0, "{asked}");
        }
        assert!(Cli::try_parse_args(["usher", "dlq", "list", "--json"]).is_ok());
    }
}
