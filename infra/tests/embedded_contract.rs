//! The port contract suite on the embedded backend, plus what only a file can show:
//! everything committed is there after the file is reopened.

use infra::{Backend, Settings};
use testkit::Embedded;

async fn fresh(max_receives: u32) -> Option<Backend> {
    let Embedded { backend, dir } = Embedded::open_with(|s| s.max_receives = max_receives).await;
    let _ = dir.keep(); // the file outlives this function, as long as the test runs
    Some(backend)
}

infra::port_contract_tests!(fresh);

#[tokio::test]
async fn reopening_the_file_keeps_every_commit() {
    use domain::queue::{ATTR_TYPE, Attributes, OutgoingMessage, Queue};
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::embedded(dir.path());
    {
        let b = Backend::connect(&settings).await.unwrap();
        let m = OutgoingMessage::new("kept".into(), Attributes::from([(ATTR_TYPE.into(), "t".into())]));
        b.queues.send_batch(Queue::BookingCommands.source(), vec![m]).await.unwrap();
        let movie = domain::catalog::Movie { movie_id: "mov_keep".into(), title: "Kept".into(), duration_min: 90 };
        b.catalog.create_movie(&movie).await.unwrap();
        // Dropped without any shutdown, as a killed process would leave it.
    }
    let b = Backend::connect(&settings).await.unwrap();
    assert_eq!(b.queues.depth(Queue::BookingCommands.source()).await.unwrap(), 1);
    assert_eq!(b.catalog.movies().await.unwrap().len(), 1);
}

/// The whole contract again, on files whose tables have the layout an earlier release made
/// (`IF NOT EXISTS` keeps it): `messages` with `AUTOINCREMENT`, `holds` a rowid table.
mod a_file_made_by_an_earlier_release {
    use infra::{Backend, Settings};

    /// The tables whose layout changed, as `066038d` declared them: a frozen copy, not
    /// derived from today's schema, which it must be able to differ from.
    const EARLIER: &str = "
        CREATE TABLE messages (
            seq           INTEGER PRIMARY KEY AUTOINCREMENT,
            queue         TEXT    NOT NULL,
            message_id    TEXT    NOT NULL,
            body          TEXT    NOT NULL,
            attributes    TEXT    NOT NULL,
            sent_at       INTEGER NOT NULL,
            visible_at    INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            receipt       TEXT
        );
        CREATE TABLE holds (
            hold_id     TEXT PRIMARY KEY,
            show_id     TEXT    NOT NULL,
            customer_id TEXT    NOT NULL,
            seat_ids    TEXT    NOT NULL,
            expires_at  INTEGER NOT NULL,
            status      TEXT    NOT NULL,
            request_id  TEXT    NOT NULL
        );";

    async fn earlier(max_receives: u32) -> Option<Backend> {
        let dir = tempfile::tempdir().unwrap().keep();
        let file = rusqlite::Connection::open(dir.join("usher.db")).unwrap();
        file.execute_batch(EARLIER).unwrap();
        drop(file);
        let mut settings = Settings::embedded(&dir);
        settings.max_receives = max_receives;
        let backend = Backend::connect(&settings).await.unwrap();
        let layout: String = rusqlite::Connection::open(dir.join("usher.db"))
            .unwrap()
            .query_row(
                "SELECT group_concat(sql, ';') FROM sqlite_schema WHERE name IN ('messages', 'holds')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            layout.contains("AUTOINCREMENT") && !layout.contains("WITHOUT ROWID"),
            "the earlier layout is kept: {layout}"
        );
        Some(backend)
    }

    infra::port_contract_tests!(earlier);
}
