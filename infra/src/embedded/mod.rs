//! The embedded backend (in progress).
use crate::{Backend, Settings};
use domain::PortError;

pub struct Embedded;

impl Embedded {
    pub fn backend(&self) -> Backend {
        unimplemented!()
    }
}

pub fn open(_settings: &Settings) -> Result<Embedded, PortError> {
    Err(PortError::Invalid("not yet".into()))
}
