//! Dead letters as JSON lines in a file (see [`super::DeadLetter`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{DeadLetter, Sink, SinkError};

pub struct FileSink {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl FileSink {
    /// Creates (truncates) the file: `replay --dead-letter`.
    pub fn create(path: &Path) -> Result<Self, SinkError> {
        Self::open(path, std::fs::File::create(path))
    }

    /// Appends to the file: the live daemon keeps it across restarts.
    pub fn append(path: &Path) -> Result<Self, SinkError> {
        Self::open(path, std::fs::OpenOptions::new().create(true).append(true).open(path))
    }

    fn open(path: &Path, f: std::io::Result<std::fs::File>) -> Result<Self, SinkError> {
        let err = |source| SinkError::File {
            path: path.to_path_buf(),
            source,
        };
        Ok(FileSink {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(f.map_err(err)?),
        })
    }

    fn err(&self, source: std::io::Error) -> SinkError {
        SinkError::File {
            path: self.path.clone(),
            source,
        }
    }
}

impl Sink<DeadLetter<'_>> for FileSink {
    fn send(&mut self, dl: &DeadLetter<'_>) -> Result<(), SinkError> {
        let line = dl.to_json_line();
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(|e| self.err(e))
    }

    /// Written through to the file (`fsync` is left to the OS, as for the
    /// state's own WAL in its default mode).
    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_json_lines_with_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dl.jsonl");
        let mut s = FileSink::create(&p).unwrap();
        let dl = DeadLetter {
            reason: "bad",
            topic: "t.pin",
            partition: 2,
            offset: 9,
            file: None,
            record: b"{\"x\":\xff}",
        };
        s.send(&dl).unwrap();
        s.flush().unwrap();
        drop(s);
        let mut s = FileSink::append(&p).unwrap();
        s.send(&DeadLetter { offset: 10, ..dl }).unwrap();
        s.flush().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["partition"], 2);
        assert_eq!(lines[1]["offset"], 10);
        assert_eq!(lines[0]["record"], "{\"x\":\u{fffd}}");
        assert!(lines[0].get("file").is_none());
    }
}
