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
