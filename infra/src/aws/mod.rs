//! The AWS backend: SQS queues, the SNS `events` topic and DynamoDB tables.

use crate::{Backend, Settings};
use domain::PortError;

pub async fn connect(_settings: &Settings) -> Result<Backend, PortError> {
    Err(PortError::Invalid("the aws backend is not built yet".to_owned()))
}

pub async fn setup(_settings: &Settings) -> Result<(), PortError> {
    Err(PortError::Invalid("the aws backend is not built yet".to_owned()))
}
