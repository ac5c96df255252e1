//! pinstream: a Kafka Streams-style stateful stream processor for the
//! Pinterest pipeline. See ARCHITECTURE.md for the whole picture.
//!
//! Data flow: a [`source::Source`] yields raw records with their positions
//! → the driver loop ([`engine::driver`]) prepares them in parallel (the
//! source's [`operator`]s clean them; rejects go to a dead-letter
//! [`sink::Sink`]) → the [`engine`] joins them on their key
//! ([`state::join`]) and feeds the [`aggregate`]s, committing state and
//! source positions together in RocksDB ([`state::store`]) → [`query`]
//! answers named questions from committed state, in batch and over
//! [`http`].
//!
//! A topology is written in the TOML DSL ([`dsl`]) or built in code as a
//! [`dsl::TopologySpec`]; [`dsl::TopologySpec::build`] validates it into a
//! runnable [`topology::Topology`]. What is specific to the Pinterest
//! pipeline lives in [`pinterest`]; the rest is generic.

pub mod aggregate;
pub mod config;
pub mod dsl;
pub mod engine;
pub mod http;
pub mod kafka;
pub mod live;
pub mod live_handle;
pub mod metrics;
pub mod model;
pub mod operator;
pub mod pinterest;
pub mod query;
pub mod replay;
pub mod sink;
pub mod source;
pub mod state;
pub mod topology;

/// The product topology (`topologies/pinterest.toml`), built into the binary.
pub use pinterest::TOPOLOGY as PINTEREST_TOPOLOGY;

/// Parses and builds a topology from TOML text; errors carry line numbers.
/// When some elements do not parse, the rest are still checked, so every
/// error is reported at once.
pub fn load_topology(text: &str) -> Result<topology::Topology, Vec<dsl::SpecError>> {
    let parsed = dsl::parse(text);
    let Some(spec) = parsed.spec else {
        let mut errors = parsed.errors;
        if let Some(partial) = parsed.partial {
            if let Err(mut more) = partial.build() {
                // Skip what only repeats a broken element's absence.
                more.retain(|e| !parsed.broken.iter().any(|b| e.message.contains(&format!("`{b}`"))));
                for e in &mut more {
                    e.path = parsed.kept.to_file_path(&e.path);
                }
                parsed.spans.annotate(&mut more);
                errors.extend(more);
            }
        }
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        return Err(errors);
    };
    spec.build().map_err(|mut errors| {
        parsed.spans.annotate(&mut errors);
        errors
    })
}
