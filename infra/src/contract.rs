//! The port contract suite.
