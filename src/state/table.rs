//! Tables as their owners declare them: the join declares its table
//! (`state::join::table`), each aggregate its own (`aggregate::state::table`);
//! the store opens what is declared and knows nothing of their layouts.

/// How a table's values combine on merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Merge {
    /// Values are only put (the join).
    None,
    /// i64 little-endian values are added (multisets).
    Add,
    /// Quantile sketches are merged at this compression.
    Sketch { compression: f64 },
}

/// One column family.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// Column family name (`join.<name>`, `agg.<name>`).
    pub name: String,
    pub merge: Merge,
    /// RocksDB write buffer size, if not the default.
    pub write_buffer: Option<usize>,
    /// Event-time retention in seconds (windowed aggregates): windows older
    /// than the watermark minus this are deleted by their owner at commit.
    pub retention: Option<i64>,
}
