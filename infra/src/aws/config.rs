//! The AWS SDK configuration, loaded once per backend from the standard environment
//! (region, the credentials chain, and `AWS_ENDPOINT_URL` for moto or LocalStack), and
//! the clients built from it, each with timeouts that suit its calls.

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::time::Duration;

/// Region used when neither the environment nor a profile names one.
const FALLBACK_REGION: &str = "us-east-1";
/// An endpoint that does not accept a connection in this long is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of a store or topic call; past this the SDK retries, then the call
/// reports the backend unavailable rather than hanging a worker or a request.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// SQS attempts include long polls of up to 20 s.
const SQS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Loads the shared configuration every client of one backend is built from.
pub(crate) async fn load() -> SdkConfig {
    let region =
        aws_config::meta::region::RegionProviderChain::default_provider().or_else(Region::new(FALLBACK_REGION));
    aws_config::defaults(BehaviorVersion::latest()).region(region).load().await
}

fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(attempt).build()
}

pub(crate) fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(config).timeout_config(timeouts(SQS_ATTEMPT_TIMEOUT)).build();
    aws_sdk_sqs::Client::from_conf(conf)
}

pub(crate) fn sns(config: &SdkConfig) -> aws_sdk_sns::Client {
    let conf = aws_sdk_sns::config::Builder::from(config).timeout_config(timeouts(ATTEMPT_TIMEOUT)).build();
    aws_sdk_sns::Client::from_conf(conf)
}

pub(crate) fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(config).timeout_config(timeouts(ATTEMPT_TIMEOUT)).build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}
