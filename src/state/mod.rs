//! Where state lives: one RocksDB per state dir ([`store`]), the join
//! table's write-back cache ([`join`]) and its sequential spill for batch
//! replays larger than memory ([`spill`]), and the tables components declare
//! ([`table`]).
//!
//! Invariant: a commit is one RocksDB write batch holding every table change
//! and the source positions it covers.

pub mod join;
pub mod spill;
pub mod store;
pub mod table;
