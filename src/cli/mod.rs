//! The parts of the `pinstream` binary (not of the library): arguments, and
//! the live commands. `main.rs` holds the dispatch and the batch commands.

pub mod args;
pub mod live;
