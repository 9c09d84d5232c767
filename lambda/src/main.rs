//! `usher-lambda`: see the library's docs. Builds the backend once per cold start, then
//! answers each SQS event with its `batchItemFailures`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use usher_lambda::Function;

#[tokio::main]
async fn main() -> Result<(), Error> {
    if let Err(e) = infra::logging::init() {
        eprintln!("usher-lambda: {e}");
        std::process::exit(1);
    }

    let function = match Function::from_lookup(|name| std::env::var(name).ok()).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("usher-lambda: {e}");
            std::process::exit(1);
        }
    };
    tracing::info!(pool = function.pool().name(), "usher-lambda ready");
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(function.handle(event.payload).await)
    }))
    .await
}
