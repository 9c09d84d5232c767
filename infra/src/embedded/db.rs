//! One SQLite file, one writer thread that group-commits, a small pool of readers.
//!
//! Every write is a job run on the writer thread inside a savepoint; the writer drains
//! whatever jobs are waiting and commits them together, then answers each caller. A
//! caller hears `Ok` only after its job is durably committed, so "commit before ack"
//! holds while throughput comes from batching rather than threads.

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

type Delivery = Box<dyn FnOnce(bool) + Send>;
/// A write job; given no connection, it only tells its caller the write did not happen.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Delivery) + Send>;

pub(crate) struct Db {
    path: PathBuf,
    writer: mpsc::SyncSender<Job>,
    readers: Mutex<Vec<Connection>>,
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
    // FULL: a commit survives power loss, not only a killed process; group commit keeps
    // the fsync count per second low.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = OFF;",
    )
    .map_err(sql_error)?;
    Ok(conn)
}

impl Db {
    pub(crate) fn open(path: &Path, schema: &str) -> Result<Arc<Db>, PortError> {
        let conn = connect(path)?;
        conn.execute_batch(schema).map_err(sql_error)?;
        let (tx, rx) = mpsc::sync_channel::<Job>(MAX_WAITING);
        std::thread::Builder::new()
            .name("usher-sqlite-writer".to_owned())
            .spawn(move || write_loop(conn, rx))
            .map_err(|e| PortError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Arc::new(Db { path: path.to_owned(), writer: tx, readers: Mutex::new(Vec::new()) }))
    }

    /// Runs `f` in the next group commit; its changes are rolled back if it fails.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<R, PortError>>();
        let job: Job = Box::new(move |conn| {
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
        });
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
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = match db.readers.lock().ok().and_then(|mut pool| pool.pop()) {
                Some(conn) => conn,
                None => connect(&db.path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = db.readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| PortError::Unavailable(format!("a read task failed: {e}")))?
    }
}

fn write_loop(conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a transaction");
            // Run nothing; every caller hears that its write did not happen.
            for job in group {
                let (_, deliver) = job(None);
                deliver(false);
            }
            continue;
        }
        let mut deliveries = Vec::with_capacity(group.len());
        for job in group {
            let _ = conn.execute_batch("SAVEPOINT job");
            let (ok, deliver) = job(Some(&conn));
            let end = if ok { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
            if let Err(e) = conn.execute_batch(end) {
                tracing::error!(error = %e, "cannot end a savepoint");
            }
            deliveries.push(deliver);
        }
        let committed = match conn.execute_batch("COMMIT") {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                false
            }
        };
        for deliver in deliveries {
            deliver(committed);
        }
    }
}
