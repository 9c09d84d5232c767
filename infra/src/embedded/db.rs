//! One SQLite file, one writer thread that group-commits, a syncer thread that makes the
//! commits durable, a checkpointer, and a small pool of readers.
//!
//! Every write is a job run on the writer thread inside a savepoint; the writer drains
//! whatever jobs are waiting and commits them together. The commit itself does not wait
//! for the disk (`synchronous = NORMAL`): the writer hands the group to the syncer and goes
//! on with the next one, while the syncer `fdatasync`s the WAL (one sync covers every group
//! committed before it) and only then answers the group's callers. So a caller of
//! [`Db::write`] hears `Ok` only once its job is on disk, as with `synchronous = FULL`,
//! but the next group runs while this one's sync is in progress: commits are pipelined.
//!
//! [`Db::write_unsynced`] answers as soon as the job's group committed, before the sync,
//! for writes that lose nothing if a crash undoes them: a receive's visibility change,
//! marking a request `processing`, deleting a handled message. The WAL is sequential, so
//! such a write is never on disk while a durable write before it is not.
//!
//! Checkpoints run on the checkpointer thread's own connection, every
//! [`CHECKPOINT_EVERY`], off the writer's path (automatic checkpoints are off).

use domain::PortError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

/// Most jobs one commit carries; bounds the latency one group adds.
const MAX_GROUP: usize = 512;
/// Most jobs waiting for the writer. Past it a write is refused at once as unavailable
/// (a 503, or a retry for a worker) instead of queueing without bound.
const MAX_WAITING: usize = 8192;
/// How long a readiness probe waits for the writer to run a job.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// How often the writer itself checkpoints between two groups, so the WAL starts over.
const RESTART_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Most reads on the blocking pool at once. Reads are CPU work on a small machine: more
/// at once only adds connections and memory (64 status polls at once held 64 reader
/// connections, and 70 MiB more RSS, before this bound).
const MAX_READS: usize = 8;
/// The writer's page cache, in KiB.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// Prepared statements kept per connection (rusqlite's default is 16; the store has more).
const STATEMENT_CACHE: usize = 128;

type Delivery = Box<dyn FnOnce(bool) + Send>;
/// A write job; given no connection, it only tells its caller the write did not happen.
type Job = (Durability, Box<dyn FnOnce(Option<&Connection>) -> (bool, Delivery) + Send>);

/// When a write's caller hears its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Once the WAL holding its commit is synced to disk.
    Synced,
    /// Once its group committed, before the sync.
    Committed,
}

pub(crate) struct Db {
    path: PathBuf,
    writer: mpsc::SyncSender<Job>,
    readers: Mutex<Vec<Connection>>,
    /// Reads running on the blocking pool at once; bounds the reader connections (each
    /// with its own page cache) and the threads they run on.
    read_slots: tokio::sync::Semaphore,
    /// Dropped with the database, which stops the checkpointer.
    _stop_checkpoints: mpsc::Sender<()>,
}

pub(crate) fn sql_error(e: rusqlite::Error) -> PortError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            PortError::Contention(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => PortError::Corrupt(e.to_string()),
        other => PortError::Unavailable(other.to_string()),
    }
}

pub(crate) fn json_error(e: serde_json::Error) -> PortError {
    PortError::Corrupt(e.to_string())
}

fn connect(path: &Path) -> Result<Connection, PortError> {
    let conn = Connection::open(path).map_err(sql_error)?;
    // NORMAL: a commit does not sync by itself; the syncer makes every acknowledged commit
    // durable (see the module docs), so a commit survives power loss, not only a killed
    // process, exactly as FULL would. temp_store MEMORY: the statement journal of the
    // writer's savepoints (one per job) stays in memory instead of spilling to a temp file
    // written and closed in every group.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(sql_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The WAL beside the database, which SQLite creates on the first write.
fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

impl Db {
    pub(crate) fn open(path: &Path, schema: &str) -> Result<Arc<Db>, PortError> {
        let conn = connect(path)?;
        conn.execute_batch(schema).map_err(sql_error)?;
        // Checkpoints are the checkpointer's, and the writer's own now and then (see
        // `restart_point`), never one in the middle of a commit. The writer touches every
        // hot page of every table: it gets a bigger page cache than a reader's 2 MiB.
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{WRITER_CACHE_KIB};"))
            .map_err(sql_error)?;
        // The schema write above created the WAL; its handle is what the syncer syncs.
        let wal = std::fs::File::open(wal_path(path))
            .map_err(|e| PortError::Unavailable(format!("cannot open the WAL of {}: {e}", path.display())))?;
        let checkpointer = connect(path)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(MAX_WAITING);
        let (to_sync, syncs) = mpsc::channel::<Vec<Delivery>>();
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(run)
                .map(drop)
                .map_err(|e| PortError::Unavailable(format!("cannot start the {name} thread: {e}")))
        };
        spawn("usher-sqlite-writer", Box::new(move || write_loop(conn, rx, to_sync)))?;
        spawn("usher-sqlite-syncer", Box::new(move || sync_loop(wal, syncs)))?;
        let (stop_checkpoints, stop) = mpsc::channel();
        spawn("usher-sqlite-checkpointer", Box::new(move || checkpoint_loop(checkpointer, stop)))?;
        Ok(Arc::new(Db {
            path: path.to_owned(),
            writer: tx,
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(MAX_READS),
            _stop_checkpoints: stop_checkpoints,
        }))
    }

    /// Runs `f` in the next group commit and answers once the commit is on disk; its
    /// changes are rolled back if it fails.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        self.submit(Durability::Synced, f).await
    }

    /// As [`Db::write`], but answers once the group committed, before it is synced: only
    /// for writes whose loss in a crash loses nothing (see the module docs).
    pub(crate) async fn write_unsynced<R, F>(&self, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        self.submit(Durability::Committed, f).await
    }

    async fn submit<R, F>(&self, durability: Durability, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<R, PortError>>();
        let job: Job = (
            durability,
            Box::new(move |conn| {
                let result = match conn {
                    Some(conn) => catch_unwind(AssertUnwindSafe(|| f(conn)))
                        .unwrap_or_else(|_| Err(PortError::Corrupt("a store job panicked".to_owned()))),
                    None => Err(PortError::Unavailable("cannot begin a transaction".to_owned())),
                };
                let ok = result.is_ok();
                let delivery: Delivery = Box::new(move |committed| {
                    let answer = match result {
                        Ok(_) if !committed => Err(PortError::Unavailable("the commit failed".to_owned())),
                        other => other,
                    };
                    let _ = reply.send(answer);
                });
                (ok, delivery)
            }),
        );
        self.writer.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => PortError::Unavailable("the store's writer is overloaded".to_owned()),
            mpsc::TrySendError::Disconnected(_) => PortError::Unavailable("the writer thread has stopped".to_owned()),
        })?;
        answer.await.map_err(|_| PortError::Unavailable("the writer thread has stopped".to_owned()))?
    }

    /// Succeeds when the writer runs a job and commits within a short time: readiness
    /// means writes work, not only reads.
    pub(crate) async fn ping_writer(&self) -> Result<(), PortError> {
        let probe = self.write(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_error));
        tokio::time::timeout(PING_TIMEOUT, probe)
            .await
            .map_err(|_| PortError::Unavailable("the store's writer did not answer in time".to_owned()))?
    }

    /// Runs `f` on a reader connection on the blocking pool. Readers see the last commit.
    pub(crate) async fn read<R, F>(self: &Arc<Self>, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        let _slot =
            self.read_slots.acquire().await.map_err(|_| PortError::Unavailable("the store is closed".to_owned()))?;
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || db.read_now(f))
            .await
            .map_err(|e| PortError::Unavailable(format!("a read task failed: {e}")))?
    }

    /// Runs `f` on a reader connection on the calling thread: only for a point read of an
    /// index, which takes microseconds, less than the hop to the blocking pool and back
    /// that [`Db::read`] pays. Anything that may scan or wait goes through [`Db::read`].
    pub(crate) fn read_now<R>(&self, f: impl FnOnce(&Connection) -> Result<R, PortError>) -> Result<R, PortError> {
        let conn = match self.readers.lock().ok().and_then(|mut pool| pool.pop()) {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            pool.push(conn);
        }
        result
    }
}

fn write_loop(conn: Connection, jobs: mpsc::Receiver<Job>, to_sync: mpsc::Sender<Vec<Delivery>>) {
    let mut checkpointed = std::time::Instant::now();
    while let Ok(first) = jobs.recv() {
        if checkpointed.elapsed() >= RESTART_EVERY {
            restart_point(&conn);
            checkpointed = std::time::Instant::now();
        }
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = run(&conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a transaction");
            // Run nothing; every caller hears that its write did not happen.
            for (_, job) in group {
                let (_, deliver) = job(None);
                deliver(false);
            }
            continue;
        }
        let mut synced = Vec::with_capacity(group.len());
        let mut committed = Vec::new();
        for (durability, job) in group {
            let _ = run(&conn, "SAVEPOINT job");
            let (ok, deliver) = job(Some(&conn));
            let ended = if ok {
                run(&conn, "RELEASE job")
            } else {
                run(&conn, "ROLLBACK TO job").and_then(|()| run(&conn, "RELEASE job"))
            };
            if let Err(e) = ended {
                tracing::error!(error = %e, "cannot end a savepoint");
            }
            match durability {
                Durability::Synced => synced.push(deliver),
                Durability::Committed => committed.push(deliver),
            }
        }
        let ok = match run(&conn, "COMMIT") {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                let _ = run(&conn, "ROLLBACK");
                false
            }
        };
        for deliver in committed {
            deliver(ok);
        }
        if !ok {
            synced.into_iter().for_each(|deliver| deliver(false));
        } else if !synced.is_empty()
            && let Err(mpsc::SendError(lost)) = to_sync.send(synced)
        {
            // No syncer: nothing can be promised durable.
            lost.into_iter().for_each(|deliver| deliver(false));
        }
    }
}

/// Lets the WAL start over. SQLite rewinds the WAL to its start at the next write once a
/// checkpoint has copied every frame into the database file; the checkpointer never gets
/// there while writes go on, since each group appends behind it, and the WAL then grows
/// without bound (1.4 GB after 50,000 holds), every append extending the file. Between two
/// groups nothing appends, so this checkpoint catches up: it only copies what was
/// committed since the checkpointer's last pass, then syncs.
fn restart_point(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "the writer's checkpoint failed");
    }
}

/// Runs one transaction-control statement from the statement cache: the writer runs four
/// or more per job, and parsing each anew was a measurable share of its time.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Syncs the WAL for every group committed so far, then answers those groups' callers.
fn sync_loop(wal: std::fs::File, groups: mpsc::Receiver<Vec<Delivery>>) {
    while let Ok(first) = groups.recv() {
        let mut waiting = first;
        while let Ok(more) = groups.try_recv() {
            waiting.extend(more);
        }
        let synced = match wal.sync_data() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot sync the WAL");
                false
            }
        };
        for deliver in waiting {
            deliver(synced);
        }
    }
}

/// Copies the WAL into the database file now and then, without blocking the writer, until
/// the database is dropped (`stop` disconnects).
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}
