//! Archives in the Confluent S3-sink layout (spec §5), on a local disk.
//!
//! `DIR/topics/<topic>/<any dirs>/<topic>+<partition>+<startOffset>.json[.gz]`,
//! each file holding JSON lines. Only the file name matters: the directories
//! between `topics/<topic>/` and the name (partitioner output such as
//! `partition=0/` or `year=2024/month=01/...`) are ignored. Files are ordered
//! by topic, partition and start offset, so the records of one partition are
//! read in offset order; record `i` of a file has offset `start + i`.
//!
//! A file that cannot be read completely (truncated gzip, I/O error) still
//! yields the whole lines before the problem, plus the error.
//!
//! Nothing is skipped silently: a file whose name does not fit the pattern,
//! and a file under `topics/<topic>/` whose name carries another topic, are
//! listed in [`Scan::skipped`] with the reason (replay reports and counts
//! them; `--strict` makes any of them an error). The directory decides:
//! `topics/p.geo/…/p.pin+0+….json` is not read as pin.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::select::{DirDate, Selection};
use super::{Batch, Poll, RawRecord, Source, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read archive directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no archive files (<topic>+<partition>+<offset>.json[.gz]) under {0}")]
    Empty(PathBuf),
}

/// One archive object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub path: PathBuf,
    pub topic: String,
    pub partition: i32,
    pub start_offset: i64,
    pub gzip: bool,
    pub size: u64,
}

/// A file the scan did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What an archive holds.
#[derive(Debug, Default)]
pub struct Scan {
    /// Archive objects, ordered by topic, partition, start offset.
    pub files: Vec<ArchiveFile>,
    /// Files that are not archive objects of the directory they lie in.
    pub skipped: Vec<Skipped>,
    /// Date directories not entered: outside the time range ([`scan_selected`]).
    pub pruned_dirs: u64,
}

/// Parses `<topic>+<partition>+<offset>.json[.gz]`.
pub fn parse_name(name: &str) -> Option<(String, i32, i64, bool)> {
    let (stem, gzip) = if let Some(s) = name.strip_suffix(".json.gz") {
        (s, true)
    } else {
        (name.strip_suffix(".json")?, false)
    };
    let mut parts = stem.rsplitn(3, '+');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    (!topic.is_empty() && offset >= 0 && partition >= 0).then(|| (topic.to_string(), partition, offset, gzip))
}

/// What a walk skips: directories whose `year=/month=/day=/hour=` names
/// lie outside a `--from/--to` range ([`DirDate`]).
#[derive(Clone, Copy)]
struct Prune<'a> {
    select: Option<&'a Selection>,
    date: DirDate,
}

fn walk(dir: &Path, dir_topic: Option<&str>, prune: Prune<'_>, out: &mut Scan) -> Result<(), ArchiveError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ArchiveError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ArchiveError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|source| ArchiveError::Dir {
            path: path.clone(),
            source,
        })?;
        if ft.is_dir() {
            let (date, span) = match (prune.select, entry.file_name().to_str()) {
                (Some(_), Some(name)) => prune.date.enter(name),
                _ => (prune.date, None),
            };
            if span.is_some_and(|span| prune.select.is_some_and(|s| s.misses(span))) {
                out.pruned_dirs += 1;
                continue;
            }
            walk(&path, dir_topic, Prune { date, ..prune }, out)?;
            continue;
        }
        let skip = |out: &mut Scan, reason: String| {
            out.skipped.push(Skipped {
                path: path.clone(),
                reason,
            })
        };
        let Some((topic, partition, start_offset, gzip)) =
            path.file_name().and_then(|n| n.to_str()).and_then(parse_name)
        else {
            skip(
                out,
                "name does not match <topic>+<partition>+<startOffset>.json[.gz]".into(),
            );
            continue;
        };
        if let Some(d) = dir_topic {
            if d != topic {
                skip(out, format!("names topic `{topic}` but lies under topics/{d}/"));
                continue;
            }
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.files.push(ArchiveFile {
            path,
            topic,
            partition,
            start_offset,
            gzip,
            size,
        });
    }
    Ok(())
}

/// Lists an archive (`DIR/topics/<topic>/...`, or `DIR` itself if it has no
/// `topics/`), ordered by topic, partition, start offset.
pub fn scan(dir: &Path) -> Result<Scan, ArchiveError> {
    scan_selected(dir, None)
}

/// [`scan`] that does not enter the partitioner directories a time range of
/// `select` cannot reach (an object below one is outside the range by
/// [`Selection::admits`] too, so the objects admitted are the same).
pub fn scan_selected(dir: &Path, select: Option<&Selection>) -> Result<Scan, ArchiveError> {
    let prune = Prune {
        select: select.filter(|s| s.has_range()),
        date: DirDate::default(),
    };
    let mut out = Scan::default();
    let topics = dir.join("topics");
    if topics.is_dir() {
        let entries = std::fs::read_dir(&topics).map_err(|source| ArchiveError::Dir {
            path: topics.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| ArchiveError::Dir {
                path: topics.clone(),
                source,
            })?;
            let path = entry.path();
            match (entry.file_type().map(|t| t.is_dir()), entry.file_name().to_str()) {
                (Ok(true), Some(topic)) => walk(&path, Some(topic), prune, &mut out)?,
                _ => out.skipped.push(Skipped {
                    path,
                    reason: "not a topic directory under topics/".into(),
                }),
            }
        }
    } else {
        walk(dir, None, prune, &mut out)?;
    }
    if out.files.is_empty() {
        if out.pruned_dirs > 0 {
            // The range reaches no object: list them all, so that the replay
            // says so as for any layout (and finds the topics' prefix).
            return scan_selected(dir, None);
        }
        return Err(ArchiveError::Empty(dir.to_path_buf()));
    }
    out.files.sort_by(|a, b| {
        (&a.topic, a.partition, a.start_offset, &a.path).cmp(&(&b.topic, b.partition, b.start_offset, &b.path))
    });
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

impl ArchiveFile {
    /// Reads the whole (decompressed) file into `buf`, replacing its
    /// contents. On error `buf` keeps the whole lines read before it.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<(), String> {
        buf.clear();
        let result = std::fs::File::open(&self.path).and_then(|mut f| {
            if self.gzip {
                buf.reserve(self.size as usize * 5);
                flate2::read::MultiGzDecoder::new(f).read_to_end(buf)
            } else {
                buf.reserve(self.size as usize);
                f.read_to_end(buf)
            }
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                // Keep only whole lines: the last one may be cut.
                let keep = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                buf.truncate(keep);
                Err(format!("reading {}: {e}", self.path.display()))
            }
        }
    }

    /// Reads the file into a batch of records with their offsets.
    pub fn read(&self) -> Batch {
        let mut buf = Vec::new();
        let read_error = self.read_into(&mut buf).err();
        let records = lines(&buf, self.start_offset)
            .map(|(offset, bytes)| RawRecord {
                offset,
                bytes: bytes.to_vec(),
                produced_ms: None,
            })
            .collect();
        Batch {
            topic: self.topic.clone(),
            partition: self.partition,
            file: Some(self.path.clone()),
            records,
            read_error,
            size: self.size,
            ..Default::default()
        }
    }
}

/// The records of a file's contents: one per line (a trailing `\r` is
/// dropped; the newline ending the last record does not start another),
/// numbered from `start_offset`.
pub fn lines(data: &[u8], start_offset: i64) -> impl Iterator<Item = (i64, &[u8])> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    // memchr finds newlines a vector at a time (a byte loop here was 4% of
    // a replay's CPU).
    let mut rest = (!data.is_empty()).then_some(body);
    let pieces = std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    });
    pieces
        .enumerate()
        .map(move |(i, line)| (start_offset + i as i64, line.strip_suffix(b"\r").unwrap_or(line)))
}

thread_local! {
    /// Per-thread file buffer: reused so big reads do not fault in fresh
    /// pages for every file (also for gzip objects from S3).
    pub(crate) static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A [`Source`] over archive files, in the order given (topic, partition,
/// offset from [`scan`]). Each file is one batch whose lines are read by
/// the worker that prepares it ([`Batch::lines`]), so files are read and
/// decompressed in parallel and records are never copied.
///
/// The files ahead of the one polled (up to [`PREFETCH_BYTES`] and
/// [`PREFETCH_FILES`]) are announced to the kernel (`POSIX_FADV_WILLNEED`),
/// which reads what it does not hold in the background: archive objects
/// are small, the kernel's readahead stops at the end of each, and the
/// workers read them one at a time each, so without this a cold archive
/// (or pages the cache let go) is read at a queue depth of two, with a
/// worker blocked on each read.
pub struct ArchiveSource {
    files: std::vec::IntoIter<ArchiveFile>,
    size: u64,
    /// How many of the files not yet polled (from the front) were announced,
    /// and their bytes.
    announced: usize,
    announced_bytes: u64,
}

/// Bytes of files announced ahead of the one polled.
pub const PREFETCH_BYTES: u64 = 64 << 20;
/// Files announced ahead of the one polled.
pub const PREFETCH_FILES: usize = 512;

impl ArchiveSource {
    pub fn new(files: Vec<ArchiveFile>) -> Self {
        let size = files.iter().map(|f| f.size).sum();
        ArchiveSource {
            files: files.into_iter(),
            size,
            announced: 0,
            announced_bytes: 0,
        }
    }

    /// Announces files ahead until the window is full (see the type's docs).
    fn announce(&mut self) {
        let ahead = self.files.as_slice();
        let (n, bytes) = prefetch_window(ahead.iter().map(|f| f.size), self.announced, self.announced_bytes);
        for f in &ahead[self.announced..n] {
            will_need(&f.path);
        }
        self.announced = n;
        self.announced_bytes = bytes;
    }
}

/// The files (from the front of `sizes`) and bytes announced once the
/// window is full, given `done` files of `done_bytes` already announced:
/// at least one file past those announced while under the limits (pure).
pub fn prefetch_window(sizes: impl Iterator<Item = u64>, done: usize, done_bytes: u64) -> (usize, u64) {
    let (mut n, mut bytes) = (done, done_bytes);
    for size in sizes.skip(done) {
        if n >= PREFETCH_FILES || bytes >= PREFETCH_BYTES {
            break;
        }
        n += 1;
        bytes += size;
    }
    (n, bytes)
}

/// Asks the kernel to read a file into its cache in the background; a
/// failure only costs the prefetch (the read reports it).
///
/// Opened non-blocking: opening a FIFO (or a device) for reading would
/// otherwise wait for a writer, and the source with it, on a file that is
/// not even next (regression:
/// `tests/hostile.rs::regression_sigint_stops_a_replay_cleanly_and_it_resumes`,
/// whose archive holds a FIFO). Only regular files are advised.
fn will_need(path: &Path) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    if let Ok(f) = opened {
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            return;
        }
        // SAFETY: a valid open descriptor; the call only advises the kernel.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED);
        }
    }
}

impl ArchiveFile {
    /// Reads the file through this thread's buffer, calling `each` per line.
    fn read_lines(&self, each: &mut dyn FnMut(i64, &[u8])) -> Option<String> {
        BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            let read_error = self.read_into(&mut buf).err();
            for (offset, bytes) in lines(&buf, self.start_offset) {
                each(offset, bytes);
            }
            if buf.capacity() > 256 << 20 {
                *buf = Vec::new(); // one huge object must not pin its memory
            }
            read_error
        })
    }
}

impl Source for ArchiveSource {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        self.announce();
        let Some(f) = self.files.next() else {
            return Ok(Poll::Done);
        };
        // It was announced (the window holds at least one file).
        self.announced -= 1;
        self.announced_bytes -= f.size;
        Ok(Poll::Batch(Batch {
            topic: f.topic.clone(),
            partition: f.partition,
            file: Some(f.path.clone()),
            size: f.size,
            weight: if f.gzip { f.size * 5 } else { f.size },
            lines: Some(Box::new(move |each| f.read_lines(each))),
            ..Default::default()
        }))
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::select::parse_time;

    /// The window fills to its limits, always takes one file past what was
    /// announced while under them (so the file polled next was announced),
    /// and takes a file bigger than the whole window alone.
    #[test]
    fn the_prefetch_window_stays_within_its_limits_and_covers_the_next_file() {
        let small = vec![1u64 << 20; 1000];
        let (n, bytes) = prefetch_window(small.iter().copied(), 0, 0);
        assert_eq!((n, bytes), (64, 64 << 20), "64 files of 1 MiB fill 64 MiB");
        // One polled: the window slides by one.
        assert_eq!(
            prefetch_window(small.iter().copied().skip(1), n - 1, bytes - (1 << 20)),
            (64, 64 << 20)
        );
        let tiny = vec![100u64; 2000];
        assert_eq!(prefetch_window(tiny.iter().copied(), 0, 0).0, PREFETCH_FILES);
        let huge = [1u64 << 40, 1];
        assert_eq!(prefetch_window(huge.iter().copied(), 0, 0), (1, 1 << 40));
        assert_eq!(prefetch_window(huge.iter().copied().skip(1), 0, 0), (1, 1));
        assert_eq!(prefetch_window(std::iter::empty(), 0, 0), (0, 0));
    }

    /// Every file of a source is polled once, in order, with the prefetch
    /// window (regression guard for its bookkeeping: a file taken that was
    /// not counted as announced would underflow).
    #[test]
    fn a_source_polls_every_file_once_in_order_while_prefetching() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for i in 0..700i64 {
            let path = dir.path().join(format!("t+0+{:010}.json", i));
            std::fs::write(&path, format!("{{\"ind\":{i}}}\n")).unwrap();
            files.push(ArchiveFile {
                topic: "t".into(),
                partition: 0,
                start_offset: i,
                size: std::fs::metadata(&path).unwrap().len(),
                path,
                gzip: false,
            });
        }
        let mut source = ArchiveSource::new(files);
        let mut seen = Vec::new();
        while let Poll::Batch(b) = source.poll().unwrap() {
            let mut got = Vec::new();
            let err = (b.lines.unwrap())(&mut |offset, _| got.push(offset));
            assert!(err.is_none());
            seen.extend(got);
        }
        assert_eq!(seen, (0..700).collect::<Vec<_>>());
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_name("p.pin+0+0000000000.json"),
            Some(("p.pin".into(), 0, 0, false))
        );
        assert_eq!(
            parse_name("a+b.geo+12+0000000500.json.gz"),
            Some(("a+b.geo".into(), 12, 500, true))
        );
        assert_eq!(parse_name("p.pin+0+x.json"), None);
        assert_eq!(parse_name("p.pin+0+1.txt"), None);
        assert_eq!(parse_name("+0+1.json"), None);
    }

    #[test]
    fn regression_misnamed_and_misplaced_archive_files_are_reported_not_skipped_silently() {
        let dir = tempfile::tempdir().unwrap();
        let geo = dir.path().join("topics/p.geo/partition=0");
        std::fs::create_dir_all(&geo).unwrap();
        std::fs::write(geo.join("p.geo+0+0000000000.json"), "{}\n").unwrap();
        std::fs::write(geo.join("p.pin+0+0000000001.json"), "{}\n").unwrap();
        std::fs::write(geo.join("p.geo-0-0000000002.json"), "{}\n").unwrap();
        std::fs::write(dir.path().join("topics/README"), "x").unwrap();
        let s = scan(dir.path()).unwrap();
        assert_eq!(s.files.len(), 1);
        assert_eq!(s.files[0].topic, "p.geo");
        let reasons: Vec<&str> = s.skipped.iter().map(|k| k.reason.as_str()).collect();
        assert_eq!(s.skipped.len(), 3, "{reasons:?}");
        assert!(reasons
            .iter()
            .any(|r| r.contains("names topic `p.pin` but lies under topics/p.geo/")));
        assert!(reasons.iter().any(|r| r.contains("does not match")));
        assert!(reasons.iter().any(|r| r.contains("not a topic directory")));
    }

    /// A local walk under `--from/--to` skips the date directories the
    /// range cannot reach, and admits exactly the objects a whole listing
    /// admits (hours, days, months and years at the range's edges; a
    /// daily layout; undated and invalid-date directories).
    #[test]
    fn a_time_range_prunes_the_walk_and_admits_what_the_whole_listing_admits() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        let mut put = |rel: &str| {
            let d = dir.path().join("topics/t").join(rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("t+0+{n:010}.json")), "{}\n").unwrap();
            n += 1;
        };
        for day in [
            "year=2023/month=12/day=31",
            "year=2024/month=01/day=01",
            "year=2024/month=01/day=02",
        ] {
            for hour in [0, 5, 23] {
                put(&format!("{day}/hour={hour:02}"));
            }
        }
        put("year=2024/month=02/day=01");
        put("year=2024/month=13/day=01/hour=00");
        put("partition=0");
        let full = scan(dir.path()).unwrap();
        let t = |s: &str| parse_time(s).unwrap();
        let ranges = [
            (Some(t("2024-01-01")), Some(t("2024-01-02"))),
            (Some(t("2024-01-01T05")), Some(t("2024-01-01T06"))),
            (Some(t("2023-12-31T23")), None),
            (None, Some(t("2024-01-01T01"))),
            (Some(t("2024-02-01")), Some(t("2024-03-01"))),
            (Some(t("2025-01-01")), None),
        ];
        let admitted = |s: &Scan, select: &Selection| -> Vec<PathBuf> {
            s.files
                .iter()
                .filter(|f| {
                    select
                        .admits(f.partition, f.start_offset, &f.path.to_string_lossy())
                        .is_ok()
                })
                .map(|f| f.path.clone())
                .collect()
        };
        for (from, to) in ranges {
            let select = Selection {
                from,
                to,
                ..Default::default()
            };
            let pruned = scan_selected(dir.path(), Some(&select)).unwrap();
            assert_eq!(admitted(&pruned, &select), admitted(&full, &select), "{from:?}..{to:?}");
        }
        let one_day = Selection {
            from: Some(t("2024-01-01")),
            to: Some(t("2024-01-02")),
            ..Default::default()
        };
        let pruned = scan_selected(dir.path(), Some(&one_day)).unwrap();
        // year=2023, day=02 and month=02 of 2024 are not entered.
        assert_eq!(pruned.pruned_dirs, 3);
        assert_eq!(admitted(&pruned, &one_day).len(), 3);
        // Undated and invalid-date objects are still listed (and counted
        // out by the admission rule, as before).
        assert_eq!(pruned.files.len(), 5);
        assert_eq!(scan_selected(dir.path(), None).unwrap().pruned_dirs, 0);
    }

    #[test]
    fn reads_lines_with_offsets_and_truncated_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t+0+0000000010.json");
        std::fs::write(&p, b"{\"a\":1}\n{\"a\":2}\r\n\n{\"a\":3}\n").unwrap();
        let f = ArchiveFile {
            path: p,
            topic: "t".into(),
            partition: 0,
            start_offset: 10,
            gzip: false,
            size: 0,
        };
        let b = f.read();
        let offs: Vec<i64> = b.records.iter().map(|r| r.offset).collect();
        assert_eq!(offs, [10, 11, 12, 13]);
        assert_eq!(b.records[1].bytes, b"{\"a\":2}");
        assert!(b.records[2].bytes.is_empty());

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, "{\"a\":1}\n".repeat(2000).as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let p = dir.path().join("t+1+0000000000.json.gz");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let f = ArchiveFile {
            path: p,
            topic: "t".into(),
            partition: 1,
            start_offset: 0,
            gzip: true,
            size: 0,
        };
        let b = f.read();
        assert!(b.read_error.is_some());
        assert!(!b.records.is_empty() && b.records.len() < 2000);
        assert!(b.records.iter().all(|r| r.bytes == b"{\"a\":1}"));
    }
}
