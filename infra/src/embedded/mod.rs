//! The embedded backend: every port in one SQLite file (`<data dir>/usher.db`, WAL).
//!
//! It is the default product backend, not a test double: queues keep SQS semantics
//! (visibility, receive counts, delays, redrive), the topic fans out by filter, and a
//! command's effects commit with its status in one transaction.

mod analytics;
mod bookings;
mod bus;
mod catalog;
mod db;
mod notifications;
mod outbox;
mod queue;
mod requests;
mod tickets;
mod users;
mod waiters;

use crate::{Backend, Settings};
use db::Db;
use domain::PortError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SCHEMA: &str = r#"
-- A table's layout here reaches new files only: an existing file keeps the table it was
-- made with (`IF NOT EXISTS`), which answers the same SQL. The port contract suite runs
-- on such a file too (`tests/embedded_contract.rs`).

-- `seq` orders messages sent at the same time; a new message takes one past the largest
-- left, so it still comes after every message on the table. Not AUTOINCREMENT, which
-- never reuses a deleted largest `seq` at the price of a read and a write of
-- sqlite_sequence on every insert (three a hold; 1-3 us each, docs/benchmarks-log.md, run Q).
CREATE TABLE IF NOT EXISTS messages (
    seq           INTEGER PRIMARY KEY,
    queue         TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    attributes    TEXT    NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at, seq);
CREATE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt) WHERE receipt IS NOT NULL;

CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    owner      TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    result     TEXT,
    error      TEXT,
    events     TEXT    NOT NULL DEFAULT '[]',
    -- The command, until it is queued (then ''): what the sweep sends for a stranded one.
    command    TEXT    NOT NULL,
    queued     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_unqueued ON requests (created_at) WHERE queued = 0;

CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner           TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    request_id      TEXT    NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT    NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_expiry ON idempotency_keys (expires_at);

CREATE TABLE IF NOT EXISTS movies (
    movie_id     TEXT PRIMARY KEY,
    title        TEXT    NOT NULL,
    duration_min INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS shows (
    show_id       TEXT PRIMARY KEY,
    movie_id      TEXT    NOT NULL,
    starts_at     INTEGER NOT NULL,
    rows          INTEGER NOT NULL,
    seats_per_row INTEGER NOT NULL,
    price_cents   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shows_by_movie ON shows (movie_id, starts_at);

CREATE TABLE IF NOT EXISTS seats (
    show_id         TEXT    NOT NULL,
    seat_id         TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    booking_id      TEXT,
    hold_id         TEXT,
    hold_expires_at INTEGER,
    PRIMARY KEY (show_id, seat_id)
) WITHOUT ROWID;

-- WITHOUT ROWID: one b-tree keyed by the hold's id, instead of a rowid table and an index
-- of its id, each written and searched on every hold (ids are time-ordered, so a new
-- hold goes at the end). Its rows are about 150 bytes, small enough for that layout,
-- which keeps whole rows in the interior pages too.
CREATE TABLE IF NOT EXISTS holds (
    hold_id     TEXT PRIMARY KEY,
    show_id     TEXT    NOT NULL,
    customer_id TEXT    NOT NULL,
    seat_ids    TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    request_id  TEXT    NOT NULL
) WITHOUT ROWID;
-- The hold cap counts a customer's active holds in the hold's transaction.
CREATE INDEX IF NOT EXISTS active_holds_by_customer ON holds (customer_id) WHERE status = 'active';

CREATE TABLE IF NOT EXISTS bookings (
    booking_id   TEXT PRIMARY KEY,
    hold_id      TEXT    NOT NULL UNIQUE,
    show_id      TEXT    NOT NULL,
    customer_id  TEXT    NOT NULL,
    seat_ids     TEXT    NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    request_id   TEXT    NOT NULL
);

-- A ticket: the columns the list filters and the version condition use, and the whole
-- aggregate (comments, history) as JSON. Lists page in (created_at, ticket_id) order.
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id  TEXT PRIMARY KEY,
    requester  TEXT    NOT NULL,
    assignee   TEXT,
    status     TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    doc        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_in_order ON tickets (created_at, ticket_id);
CREATE INDEX IF NOT EXISTS tickets_by_status ON tickets (status, created_at, ticket_id);
CREATE INDEX IF NOT EXISTS tickets_by_assignee ON tickets (assignee, created_at, ticket_id);
CREATE INDEX IF NOT EXISTS tickets_by_requester ON tickets (requester, created_at, ticket_id);

CREATE TABLE IF NOT EXISTS users (
    user_id       TEXT PRIMARY KEY,
    is_agent      INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL
);
"#;

/// Every port over one database. Cloning the `Arc` hands out the same backend.
pub struct Embedded {
    db: Arc<Db>,
    /// Receives after which a message moves to its DLQ (the redrive safety net).
    redrive_after: u32,
    /// Wakes long-polling receivers in this process when a send commits.
    arrivals: HashMap<String, Arc<queue::Arrival>>,
    /// Long polls on status documents, woken by the commits that complete their request.
    waiters: waiters::Waiters,
}

/// The store's file in the data dir.
fn store_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join("usher.db")
}

/// Opens (creating if needed) `<data dir>/usher.db`, its schema and its subscriptions.
pub fn open(settings: &Settings) -> Result<Arc<Embedded>, PortError> {
    create_private_dir(&settings.data_dir).map_err(|e| {
        PortError::Unavailable(format!("cannot create the data dir {}: {e}", settings.data_dir.display()))
    })?;
    open_file(&store_path(settings), settings.max_receives)
}

/// Fails unless `<data dir>/usher.db` exists: for the commands that only read or change
/// what is there, so that a mistyped `USHER_DATA_DIR` is an error, not a new empty store.
pub fn require_store(settings: &Settings) -> Result<(), PortError> {
    let path = store_path(settings);
    if path.is_file() {
        return Ok(());
    }
    Err(PortError::Unavailable(format!(
        "no store at {} (USHER_DATA_DIR): start `usher dev` or run `usher setup` first",
        path.display()
    )))
}

/// Creates `dir` (and its parents) if missing; a directory made here is owner-only
/// (0700): it holds the store and, for `usher dev`, the JWT secret.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_file(path: &Path, max_receives: u32) -> Result<Arc<Embedded>, PortError> {
    let schema = [SCHEMA, notifications::SCHEMA, analytics::SCHEMA, outbox::SCHEMA].concat();
    let db = Db::open(path, &schema)?;
    // Owner-only; SQLite gives its -wal and -shm files the same mode.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| PortError::Unavailable(format!("cannot make {} owner-only: {e}", path.display())))?;
    let arrivals = domain::queue::Queue::ALL
        .into_iter()
        .flat_map(|q| [q.source(), q.dlq()])
        .map(|addr| (addr.name(), Arc::default()))
        .collect();
    Ok(Arc::new(Embedded { db, redrive_after: max_receives + 1, arrivals, waiters: waiters::Waiters::default() }))
}

impl Embedded {
    pub fn backend(self: &Arc<Self>) -> Backend {
        Backend {
            clock: Arc::new(domain::clock::SystemClock),
            queues: self.clone(),
            bus: self.clone(),
            outbox: self.clone(),
            requests: self.clone(),
            catalog: self.clone(),
            bookings: self.clone(),
            notifications: self.clone(),
            analytics: self.clone(),
            tickets: self.clone(),
            users: self.clone(),
        }
    }
}
