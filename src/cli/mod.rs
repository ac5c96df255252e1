//! The parts of the `pinstream` binary (not of the library): arguments,
//! the batch commands and the live ones, and the helpers they share.

pub mod archive;
pub mod args;
pub mod batch;
pub mod live;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use args::Format;
use pinstream::query;
use pinstream::replay;
use pinstream::state::store;
use pinstream::topology::Topology;

pub(crate) fn load(path: Option<&Path>) -> Result<Topology, ExitCode> {
    let (name, text) = match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                eprintln!("error: cannot read topology {}: {e}", p.display());
                return Err(ExitCode::from(2));
            }
        },
        None => (
            "topologies/pinterest.toml (built in)".to_string(),
            pinstream::PINTEREST_TOPOLOGY.to_string(),
        ),
    };
    pinstream::load_topology(&text).map_err(|errors| {
        for e in &errors {
            match e.line {
                Some(l) => eprintln!("{name}:{l}: {}", SpecLine(e)),
                None => eprintln!("{name}: {}", SpecLine(e)),
            }
        }
        eprintln!("{} error(s) in {name}", errors.len());
        ExitCode::from(2)
    })
}

/// A spec error without its line (the caller prints `file:line:` first).
struct SpecLine<'a>(&'a pinstream::dsl::SpecError);

impl std::fmt::Display for SpecLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut e = self.0.clone();
        e.line = None;
        write!(f, "{e}")
    }
}

/// Opens an existing state dir with its topology (for `answers`, `positions`).
/// The inner `Err` is an invalid topology's exit code.
pub(crate) fn open_state(
    state_dir: &Path,
    topology: Option<&Path>,
) -> Result<Result<(Topology, store::Store), ExitCode>> {
    let topo = match load(topology) {
        Ok(t) => t,
        Err(code) => return Ok(Err(code)),
    };
    if !replay::is_state_dir(state_dir) {
        bail!(
            "{} is not a pinstream state dir (no {} marker, no pinstream RocksDB)",
            state_dir.display(),
            store::MARKER
        );
    }
    let store = store::Store::open_read_only(state_dir, &topo)?;
    Ok(Ok((topo, store)))
}

pub(crate) fn print_answers(answers: &[(String, Vec<query::Row>)], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", query::answers_json(answers))?,
        Format::Table => write!(out, "{}", query::answers_table(answers))?,
    }
    Ok(())
}

pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
