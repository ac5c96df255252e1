//! Aggregate functions and their in-memory delta buffers.

pub mod buffers;
pub mod sketch;
pub mod tdigest;
