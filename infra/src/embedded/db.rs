//! One SQLite file, one writer thread that group-commits, a syncer thread that makes the
//! commits durable, a checkpointer, and a small pool of readers.
//!
//! Every write is a job run on the writer thread; the writer drains whatever jobs are
//! waiting and commits them together. A group first runs without a savepoint per job:
//! a savepoint copies every page a job touches into a statement journal, which was about
//! a fifth of the writer's time. If a job fails, the writer undoes the whole group and
//! runs it again, each job in its own savepoint, so the failed job's changes are undone
//! alone (see [`commit_group`]). A job may therefore run twice; only the last run's
//! result is answered, and a job does nothing but SQL.
//!
//! The commit itself does not wait for the disk (`synchronous = NORMAL`): the writer hands
//! the group to the syncer and goes on with the next one, while the syncer `fdatasync`s
//! the WAL (one sync covers every group committed before it) and only then answers the
//! group's callers. So a caller of [`Db::write`] hears `Ok` only once its job is on disk,
//! as with `synchronous = FULL`, but the next group runs while this one's sync is in
//! progress: commits are pipelined.
//!
//! [`Db::write_unsynced`] answers as soon as the job's group committed, before the sync,
//! for writes that lose nothing if a crash undoes them: a receive's visibility change,
//! marking a request `processing`, deleting a handled message. The WAL is sequential, so
//! such a write is never on disk while a durable write before it is not.
//!
//! The writer and the syncer export how busy they are (`usher_store_*` on `/metrics`):
//! how long the oldest write of each group waited for the writer, how long each group's
//! transaction took, each sync, and the writes and commits counted.
//!
//! Checkpoints run on the checkpointer thread's own connection, every
//! [`CHECKPOINT_EVERY`], off the writer's path (automatic checkpoints are off). The writer
//! only copies what the checkpointer has not, right after it caught up, to let the WAL
//! start over (see [`restart_point`]).

use domain::PortError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

/// Most jobs one commit carries; bounds the latency one group adds.
const MAX_GROUP: usize = 512;
/// Most jobs waiting for the writer. Past it a write is refused at once as unavailable
/// (a 503, or a retry for a worker) instead of queueing without bound.
const MAX_WAITING: usize = 8192;
/// How long a readiness probe waits for the writer to run a job.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// Most passes the checkpointer makes back to back (see [`checkpoint_loop`]).
const CATCH_UP_PASSES: usize = 3;
/// A pass that found at most this many new frames to copy has caught up.
const CAUGHT_UP_FRAMES: i64 = 64;
/// How often the writer lets the WAL start over (see [`restart_point`]): at the first time
/// the checkpointer has caught up this long after the last restart, when least is left to
/// copy. Each restart stalls the writer while it copies the rest and syncs: 15-20 ms
/// when it came at any time, 2-4 ms right after the checkpointer's catch-up passes. Under
/// load a second of commits is about 150 MB of WAL; starting over every 100 ms keeps
/// the WAL a tenth of that, and rewrites pages the OS already caches. Against 250 ms, the
/// writer spent 2-8% less time per hold and the admissions' p99 was 0.1-0.8 ms lower
/// (docs/benchmarks-log.md, runs L to O), likely because a smaller WAL is more often still in
/// the CPU's caches when it is written again. A later repeat (the night session's
/// section) found the writer's time and holds/s the same either way, and the checkpointer
/// costing a few µs a hold more at 100 ms: the choice is a close one.
const RESTART_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest the writer goes without a restart, if the checkpointer never catches up.
const RESTART_LATEST: std::time::Duration = std::time::Duration::from_millis(1000);
/// Most reads on the blocking pool at once. Reads are CPU work on a small machine: more
/// at once only adds connections and memory (64 status polls at once held 64 reader
/// connections, and 70 MiB more RSS, before this bound).
const MAX_READS: usize = 8;
/// The writer's page cache, in KiB. Its size is a cost on most commits: when a b-tree
/// balance reorders the pages it wrote, SQLite renumbers one through the locking page's
/// number (page 262,145 with 4 KiB pages), and the commit then drops every cached page
/// past the end of the file by scanning the whole cache. That scan was 4-5% of the
/// writer's time with 4 MiB and about 1% with 2 MiB, with no more reads from the file;
/// 16 MiB bought nothing over 4.
const WRITER_CACHE_KIB: u32 = 2 * 1024;
/// Prepared statements kept per connection (rusqlite's default is 16; the store has more).
const STATEMENT_CACHE: usize = 128;

/// A write waiting for the writer: run (once, or twice, see [`commit_group`]), then answered.
trait Job: Send {
    fn durability(&self) -> Durability;

    /// When the caller handed it to the writer.
    fn submitted(&self) -> Instant;

    /// Runs the write on the writer's connection, inside the group's transaction; false
    /// if it failed, and its changes must be undone.
    fn run(&mut self, conn: &Connection) -> bool;

    /// Answers the caller with the last run's result, once its group committed
    /// (`committed`) or failed to.
    fn answer(self: Box<Self>, committed: bool);
}

/// A [`Job`] made of a caller's closure and the channel its result goes back on.
struct Write<R, F> {
    durability: Durability,
    submitted: Instant,
    f: F,
    result: Option<Result<R, PortError>>,
    reply: tokio::sync::oneshot::Sender<Result<R, PortError>>,
}

impl<R, F> Job for Write<R, F>
where
    R: Send,
    F: FnMut(&Connection) -> Result<R, PortError> + Send,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn submitted(&self) -> Instant {
        self.submitted
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let result = catch_unwind(AssertUnwindSafe(|| (self.f)(conn)))
            .unwrap_or_else(|_| Err(PortError::Corrupt("a store job panicked".to_owned())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, committed: bool) {
        let answer = match self.result {
            Some(Ok(_)) if !committed => Err(PortError::Unavailable("the commit failed".to_owned())),
            Some(result) => result,
            None => Err(PortError::Unavailable("cannot begin a transaction".to_owned())),
        };
        let _ = self.reply.send(answer);
    }
}

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
    writer: mpsc::SyncSender<Box<dyn Job>>,
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
    // writer's savepoints (when a group runs again, see `commit_group`) stays in memory
    // instead of spilling to a temp file.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(sql_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The bundled SQLite is built with STAT4, under which a statement whose plan could
    // depend on a bound value (a `LIMIT ?`, as in every receive) is compiled again each
    // time that value is bound: 5-6% of the writer's time. The query planner stability
    // guarantee keeps each statement's first plan; without ANALYZE statistics the plan
    // would be the same anyway.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(sql_error)?;
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
        // `restart_point`), never one in the middle of a commit.
        conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{WRITER_CACHE_KIB};"))
            .map_err(sql_error)?;
        // The schema write above created the WAL; its handle is what the syncer syncs.
        let wal = std::fs::File::open(wal_path(path))
            .map_err(|e| PortError::Unavailable(format!("cannot open the WAL of {}: {e}", path.display())))?;
        let checkpointer = connect(path)?;
        let (tx, rx) = mpsc::sync_channel::<Box<dyn Job>>(MAX_WAITING);
        let (to_sync, syncs) = mpsc::channel::<Vec<Box<dyn Job>>>();
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(run)
                .map(drop)
                .map_err(|e| PortError::Unavailable(format!("cannot start the {name} thread: {e}")))
        };
        let caught_up = Arc::new(AtomicBool::new(false));
        let restart_now = Arc::clone(&caught_up);
        spawn("usher-sqlite-writer", Box::new(move || write_loop(conn, rx, to_sync, &restart_now)))?;
        spawn("usher-sqlite-syncer", Box::new(move || sync_loop(wal, syncs)))?;
        let (stop_checkpoints, stop) = mpsc::channel();
        spawn("usher-sqlite-checkpointer", Box::new(move || checkpoint_loop(checkpointer, stop, &caught_up)))?;
        Ok(Arc::new(Db {
            path: path.to_owned(),
            writer: tx,
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(MAX_READS),
            _stop_checkpoints: stop_checkpoints,
        }))
    }

    /// Runs `f` in the next group commit and answers once the commit is on disk; its
    /// changes are rolled back if it fails. `f` may run twice (see the module docs), so it
    /// does nothing but SQL.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        self.submit(Durability::Synced, f).await
    }

    /// As [`Db::write`], but answers once the group committed, before it is synced: only
    /// for writes whose loss in a crash loses nothing (see the module docs).
    pub(crate) async fn write_unsynced<R, F>(&self, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        self.submit(Durability::Committed, f).await
    }

    async fn submit<R, F>(&self, durability: Durability, f: F) -> Result<R, PortError>
    where
        R: Send + 'static,
        F: FnMut(&Connection) -> Result<R, PortError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Write { durability, submitted: Instant::now(), f, result: None, reply });
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

/// Runs groups of jobs as they come. Between two groups it lets the WAL start over, when a
/// restart is due and the checkpointer has just caught up (`caught_up`), or when it has
/// not for [`RESTART_LATEST`].
fn write_loop(
    conn: Connection,
    jobs: mpsc::Receiver<Box<dyn Job>>,
    to_sync: mpsc::Sender<Vec<Box<dyn Job>>>,
    caught_up: &AtomicBool,
) {
    let mut checkpointed = Instant::now();
    while let Ok(first) = jobs.recv() {
        let just_caught_up = caught_up.swap(false, Ordering::Relaxed);
        let since = checkpointed.elapsed();
        if (just_caught_up && since >= RESTART_EVERY) || since >= RESTART_LATEST {
            restart_point(&conn);
            checkpointed = Instant::now();
        }
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        // Jobs come in order, so the first waited longest; the wait includes a restart.
        metrics::histogram!("usher_store_write_wait_seconds")
            .record(started.saturating_duration_since(group[0].submitted()).as_secs_f64());
        let ok = commit_group(&conn, &mut group);
        metrics::histogram!("usher_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("usher_store_commits_total").increment(1);
        metrics::counter!("usher_store_writes_total").increment(group.len() as u64);
        let (synced, committed): (Vec<_>, Vec<_>) =
            group.into_iter().partition(|job| job.durability() == Durability::Synced);
        for job in committed {
            job.answer(ok);
        }
        if !ok {
            synced.into_iter().for_each(|job| job.answer(false));
        } else if !synced.is_empty()
            && let Err(mpsc::SendError(lost)) = to_sync.send(synced)
        {
            // No syncer: nothing can be promised durable.
            lost.into_iter().for_each(|job| job.answer(false));
        }
    }
}

/// Runs a group's jobs in one transaction and commits it; false if it did not commit.
///
/// The jobs first run one after another with nothing between them. If one fails, the
/// transaction is rolled back and the whole group runs again, each job in a savepoint
/// that is rolled back if it fails: the jobs after a failed one may have read what it
/// wrote, so they run again too. Failing jobs are rare (a store error, a corrupt row), so
/// the group nearly always commits on the first pass, without paying for savepoints.
fn commit_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> bool {
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "cannot begin a transaction");
        return false;
    }
    if !group.iter_mut().all(|job| job.run(conn)) {
        if let Err(e) = run(conn, "ROLLBACK").and_then(|()| run(conn, "BEGIN IMMEDIATE")) {
            tracing::error!(error = %e, "cannot start a group over");
            let _ = run(conn, "ROLLBACK");
            return false;
        }
        for job in group.iter_mut() {
            let _ = run(conn, "SAVEPOINT job");
            let ended = if job.run(conn) {
                run(conn, "RELEASE job")
            } else {
                run(conn, "ROLLBACK TO job").and_then(|()| run(conn, "RELEASE job"))
            };
            if let Err(e) = ended {
                tracing::error!(error = %e, "cannot end a savepoint");
            }
        }
    }
    match run(conn, "COMMIT") {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            let _ = run(conn, "ROLLBACK");
            false
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
fn sync_loop(wal: std::fs::File, groups: mpsc::Receiver<Vec<Box<dyn Job>>>) {
    while let Ok(first) = groups.recv() {
        let mut waiting = first;
        while let Ok(more) = groups.try_recv() {
            waiting.extend(more);
        }
        let started = Instant::now();
        let sync = wal.sync_data();
        metrics::histogram!("usher_store_sync_seconds").record(started.elapsed().as_secs_f64());
        let synced = match sync {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot sync the WAL");
                false
            }
        };
        for job in waiting {
            job.answer(synced);
        }
    }
}

/// Copies the WAL into the database file now and then, without blocking the writer, until
/// the database is dropped (`stop` disconnects). Each time it makes up to
/// [`CATCH_UP_PASSES`] passes back to back, each copying what the writer committed during
/// the one before, then tells the writer (`caught_up`), whose own checkpoint then has
/// only the commits of the last, short pass left to copy.
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, caught_up: &AtomicBool) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let mut copied_before = 0;
        for _ in 0..CATCH_UP_PASSES {
            // (frames in the WAL, frames copied into the database file so far)
            let pass = conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)));
            match pass {
                Ok((frames, copied)) => {
                    let fresh = frames - copied_before;
                    copied_before = copied;
                    if fresh <= CAUGHT_UP_FRAMES {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint failed");
                    break;
                }
            }
        }
        caught_up.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS rows (name TEXT PRIMARY KEY);";

    type TestJob<R> = Box<dyn FnMut(&Connection) -> Result<R, PortError> + Send>;

    fn insert(conn: &Connection, name: &str) -> Result<(), PortError> {
        conn.execute("INSERT INTO rows (name) VALUES (?1)", [name]).map(drop).map_err(sql_error)
    }

    fn count(conn: &Connection, name: &str) -> Result<i64, PortError> {
        conn.query_row("SELECT COUNT(*) FROM rows WHERE name = ?1", [name], |r| r.get(0)).map_err(sql_error)
    }

    /// Submits `jobs`, in order, while the writer is busy with a slow one, so that they
    /// commit as one group; returns their answers in order.
    async fn in_one_group<R: Send + 'static>(db: &Arc<Db>, jobs: Vec<TestJob<R>>) -> Vec<Result<R, PortError>> {
        let slow = db.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(())
        });
        let (slow, answers) = tokio::join!(slow, async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut writes: Vec<_> = jobs.into_iter().map(|f| Box::pin(db.write(f))).collect();
            let mut answers: Vec<Option<Result<R, PortError>>> = writes.iter().map(|_| None).collect();
            // Each write sends its job on its first poll, so these are sent in order.
            std::future::poll_fn(|cx| {
                for (write, answer) in writes.iter_mut().zip(answers.iter_mut()) {
                    if answer.is_none()
                        && let std::task::Poll::Ready(r) = write.as_mut().poll(cx)
                    {
                        *answer = Some(r);
                    }
                }
                if answers.iter().all(Option::is_some) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
            })
            .await;
            answers.into_iter().flatten().collect::<Vec<_>>()
        });
        slow.unwrap();
        answers
    }

    #[tokio::test]
    async fn a_failed_job_is_undone_alone_and_the_rest_of_its_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), SCHEMA).unwrap();
        let (a_runs, c_runs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a_counted, c_counted) = (Arc::clone(&a_runs), Arc::clone(&c_runs));
        let answers = in_one_group(
            &db,
            vec![
                Box::new(move |conn| {
                    a_counted.fetch_add(1, Ordering::SeqCst);
                    insert(conn, "a").map(|()| 0)
                }),
                Box::new(|conn| {
                    insert(conn, "b")?;
                    Err(PortError::Corrupt("b fails after writing".to_owned()))
                }),
                // Runs after b in the same transaction: on the pass that commits, b's row
                // is gone.
                Box::new(move |conn| {
                    c_counted.fetch_add(1, Ordering::SeqCst);
                    insert(conn, "c")?;
                    count(conn, "b")
                }),
                Box::new(|_| panic!("a job that panics")),
            ],
        )
        .await;
        assert!(matches!(answers[0], Ok(0)));
        assert!(matches!(&answers[1], Err(PortError::Corrupt(m)) if m == "b fails after writing"));
        assert!(matches!(answers[2], Ok(0)), "c saw b's undone row: {:?}", answers[2]);
        assert!(matches!(&answers[3], Err(PortError::Corrupt(m)) if m.contains("panicked")));
        // The group ran twice: a on both passes, c only on the second (b failed before it).
        assert_eq!((a_runs.load(Ordering::SeqCst), c_runs.load(Ordering::SeqCst)), (2, 1));
        let committed = db.read(|conn| Ok((count(conn, "a")?, count(conn, "b")?, count(conn, "c")?))).await.unwrap();
        assert_eq!(committed, (1, 0, 1));
    }

    #[tokio::test]
    async fn a_group_that_fails_nowhere_runs_each_job_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), SCHEMA).unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let jobs = (0..20)
            .map(|i| {
                let runs = Arc::clone(&runs);
                Box::new(move |conn: &Connection| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    insert(conn, &format!("row {i}"))
                }) as TestJob<()>
            })
            .collect();
        let answers = in_one_group(&db, jobs).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(runs.load(Ordering::SeqCst), 20);
        let rows: i64 = db
            .read(|conn| conn.query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0)).map_err(sql_error))
            .await
            .unwrap();
        assert_eq!(rows, 20);
    }

    #[tokio::test]
    async fn a_job_that_fails_alone_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), SCHEMA).unwrap();
        let failed = db
            .write(|conn| {
                insert(conn, "x")?;
                Err::<(), _>(PortError::Contention("no".to_owned()))
            })
            .await;
        assert!(matches!(failed, Err(PortError::Contention(_))));
        assert_eq!(db.read(|conn| count(conn, "x")).await.unwrap(), 0);
    }

    /// Times a cached `LIMIT ?` query was compiled again over `runs` runs, each binding
    /// a different limit, as successive receives do.
    fn recompiles_of_a_bound_limit(conn: &Connection, runs: i64) -> i32 {
        conn.execute_batch(SCHEMA).unwrap();
        let sql = "SELECT name FROM rows ORDER BY name LIMIT ?1";
        for limit in 1..=runs {
            let mut statement = conn.prepare_cached(sql).unwrap();
            statement.query_map([limit], |r| r.get::<_, String>(0)).unwrap().for_each(drop);
        }
        conn.prepare_cached(sql).unwrap().get_status(rusqlite::StatementStatus::RePrepare)
    }

    #[test]
    fn a_bound_limit_does_not_recompile_the_statement() {
        let dir = tempfile::tempdir().unwrap();
        // The bundled SQLite as built, without the guarantee `connect` turns on: each new
        // limit recompiles the statement.
        let plain = Connection::open(dir.path().join("plain.db")).unwrap();
        assert!(recompiles_of_a_bound_limit(&plain, 5) >= 4);
        let conn = connect(&dir.path().join("t.db")).unwrap();
        assert_eq!(recompiles_of_a_bound_limit(&conn, 5), 0);
    }
}
