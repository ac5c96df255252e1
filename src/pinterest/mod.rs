//! Pinterest.

pub mod emulate;
