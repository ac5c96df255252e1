//! `pinstream archive check`: an archive's integrity without a replay.
//!
//! Reads every object of a directory or bucket through the same sources a
//! replay uses (so the same names, layouts, selection and S3 retries apply),
//! counts each object's records and feeds them to
//! [`pinstream::source::integrity::Checker`]: per topic-partition, the
//! offsets covered, gaps between consecutive objects, overlaps, and
//! unreadable objects. Exit 1 if anything is missing (a gap or an
//! unreadable object); overlaps alone are reported (a replay counts their
//! records once).

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::Result;

use super::args::ArchiveCommand;
use super::thousands;
use pinstream::model::offsets::Positions;
use pinstream::source::archive::{self, ArchiveSource};
use pinstream::source::integrity::{across_dirs_hint, Checker};
use pinstream::source::s3::{S3Options, S3Source, S3Url};
use pinstream::source::select::{OffsetRange, Selection};
use pinstream::source::{Batch, Poll, Source};

/// What reading the objects found.
#[derive(Default)]
struct Report {
    checker: Checker,
    objects: u64,
    bytes: u64,
    unreadable: Vec<String>,
    skipped: Vec<String>,
    not_selected: u64,
}

impl Report {
    fn take(&mut self, b: Batch) {
        let name = b.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let (mut first, mut n) = (None, 0u64);
        for r in &b.records {
            first.get_or_insert(r.offset);
            n += 1;
        }
        let mut err = b.read_error;
        if let Some(lines) = b.lines {
            err = err.or(lines(&mut |offset, _| {
                first.get_or_insert(offset);
                n += 1;
            }));
        }
        self.objects += 1;
        self.bytes += b.size;
        if let Some(e) = err {
            self.unreadable.push(e);
        }
        if let Some(f) = first {
            self.checker.object(&b.topic, b.partition, f, n, &name);
        }
    }

    fn drain(&mut self, source: impl Source, select: &Selection) -> Result<()> {
        match select.offsets {
            Some((from, to)) => self.drain_all(OffsetRange {
                inner: source,
                from,
                to,
            }),
            None => self.drain_all(source),
        }
    }

    fn drain_all(&mut self, mut source: impl Source) -> Result<()> {
        source.resume(&Positions::default())?;
        loop {
            match source.poll()? {
                Poll::Batch(b) => self.take(b),
                Poll::Idle => continue,
                Poll::Done => return Ok(()),
            }
        }
    }
}

pub(crate) fn run(command: ArchiveCommand) -> Result<ExitCode> {
    let ArchiveCommand::Check { archive, s3, select } = command;
    let select = select.selection()?;
    let mut report = Report::default();
    let shown = archive.display().to_string();
    if S3Url::is_s3(&shown) {
        let opts = S3Options {
            endpoint: s3.s3_endpoint,
            region: s3.s3_region,
            ..S3Options::default()
        };
        let (mut source, _) = S3Source::open(S3Url::parse(&shown)?, opts)?;
        source.select(select.clone());
        let stats = source.stats.clone();
        report.drain(source, &select)?;
        report.not_selected = stats.not_selected.load(Ordering::Relaxed);
        if let Ok(mut k) = stats.skipped.lock() {
            report.skipped.append(&mut k);
        };
    } else {
        let scan = archive::scan(&archive)?;
        report.skipped = scan
            .skipped
            .iter()
            .map(|k| format!("{}: {}", k.path.display(), k.reason))
            .collect();
        let mut files = Vec::new();
        for f in scan.files {
            match select.admits(f.partition, f.start_offset, &f.path.to_string_lossy()) {
                Ok(()) => files.push(f),
                Err(_) => report.not_selected += 1,
            }
        }
        report.drain(ArchiveSource::new(files), &select)?;
    }
    report.checker.finish();
    print(&shown, &report);
    let bad = report.checker.gaps() + report.unreadable.len();
    Ok(if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print(archive: &str, r: &Report) {
    let c = &r.checker;
    let records: u64 = c.partitions.values().map(|p| p.records).sum();
    println!(
        "archive {archive}: {} objects, {} records, {:.1} MB, {} partitions",
        thousands(r.objects),
        thousands(records),
        r.bytes as f64 / 1e6,
        c.partitions.len()
    );
    for ((topic, partition), p) in &c.partitions {
        println!(
            "  {topic} partition {partition}: {} objects, offsets {}..{} ({} records), {} missing, {} repeated",
            thousands(p.objects),
            p.first.unwrap_or(0),
            p.end - 1,
            thousands(p.records),
            thousands(p.gap_records),
            thousands(p.overlap_records)
        );
    }
    for f in &c.findings {
        println!("{f}");
    }
    let across = c.overlap_records_across_dirs();
    if across > 0 {
        println!("overlaps: {}", across_dirs_hint(across));
    }
    if c.out_of_order() > 0 {
        println!(
            "order: {} objects came below the start offset of the one before them in their partition (keys not \
             zero-padded to one width, or offsets back in an earlier time directory); a replay of this listing \
             applies them in this order",
            thousands(c.out_of_order())
        );
    }
    for e in &r.unreadable {
        println!("unreadable: {e}");
    }
    for k in &r.skipped {
        println!("skipped: {k}");
    }
    let (gap_records, overlap_records): (u64, u64) = c
        .partitions
        .values()
        .fold((0, 0), |(g, o), p| (g + p.gap_records, o + p.overlap_records));
    println!(
        "check: objects={} records={} partitions={} gaps={} gap_records={} overlaps={} overlap_records={} unreadable={} skipped_files={} not_selected={}",
        r.objects,
        records,
        c.partitions.len(),
        c.gaps(),
        gap_records,
        c.overlaps(),
        overlap_records,
        r.unreadable.len(),
        r.skipped.len(),
        r.not_selected
    );
}
