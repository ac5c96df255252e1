//! The floors a replay is measured against (`benches/compare.sh`):
//!
//! * `read`: read every object of an archive (and gunzip `.json.gz`), count
//!   its records: what any engine pays before it parses anything;
//! * `parse`: the same, then parse every record's JSON into the typed fields
//!   the Pinterest topology uses (serde_json, borrowed strings, unknown
//!   fields skipped): the least work any JSON engine can do per record.
//!
//! Both run on all cores (one object at a time per thread).
//!
//!     floor read|parse ARCHIVE_DIR [THREADS]
//!
//! Prints `floor <mode>: records=N bytes=B wall_s=S records_per_s=R`.
use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Deserialize;

#[allow(dead_code)]
#[derive(Deserialize)]
struct Pin<'a> {
    index: Option<i64>,
    #[serde(borrow)]
    unique_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    poster_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    follower_count: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tag_list: Option<Cow<'a, str>>,
    #[serde(borrow)]
    is_image_or_video: Option<Cow<'a, str>>,
    #[serde(borrow)]
    image_src: Option<Cow<'a, str>>,
    #[serde(borrow)]
    save_location: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Geo<'a> {
    ind: Option<i64>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    #[serde(borrow)]
    country: Option<Cow<'a, str>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct User<'a> {
    ind: Option<i64>,
    #[serde(borrow)]
    first_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    last_name: Option<Cow<'a, str>>,
    age: Option<i64>,
    #[serde(borrow)]
    date_joined: Option<Cow<'a, str>>,
}

fn objects(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            objects(&p, out);
        } else if p.to_string_lossy().ends_with(".json") || p.to_string_lossy().ends_with(".json.gz") {
            out.push(p);
        }
    }
}

/// Parses one record of the topic the object belongs to; false if it does not parse.
fn parse(topic: u8, line: &[u8]) -> bool {
    match topic {
        b'p' => serde_json::from_slice::<Pin>(line).is_ok(),
        b'g' => serde_json::from_slice::<Geo>(line).is_ok(),
        _ => serde_json::from_slice::<User>(line).is_ok(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (mode, dir) = match (args.first(), args.get(1)) {
        (Some(m), Some(d)) if m == "read" || m == "parse" => (m.clone(), PathBuf::from(d)),
        _ => {
            eprintln!("usage: floor read|parse ARCHIVE_DIR [THREADS]");
            std::process::exit(2);
        }
    };
    let threads = args
        .get(2)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut files = Vec::new();
    objects(&dir, &mut files);
    files.sort();
    if files.is_empty() {
        eprintln!("floor: no .json or .json.gz objects under {}", dir.display());
        std::process::exit(2);
    }
    let started = Instant::now();
    let (next, records, bytes, bad) = (
        AtomicUsize::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let (mut raw, mut text) = (Vec::new(), Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    raw.clear();
                    std::fs::File::open(path)
                        .and_then(|mut f| f.read_to_end(&mut raw))
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let data = if path.extension().is_some_and(|e| e == "gz") {
                        text.clear();
                        flate2::read::MultiGzDecoder::new(&raw[..])
                            .read_to_end(&mut text)
                            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                        &text
                    } else {
                        &raw
                    };
                    // topics/<prefix>.<topic>/partition=<p>/<object>
                    let topic_dir = path.parent().and_then(Path::parent).and_then(Path::file_name);
                    let topic = topic_dir
                        .and_then(|t| t.to_str())
                        .and_then(|t| t.rsplit('.').next())
                        .map_or(b'u', |t| t.as_bytes()[0]);
                    let (mut n, mut b) = (0, 0);
                    for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                        n += 1;
                        if mode == "parse" && !parse(topic, line) {
                            b += 1;
                        }
                    }
                    records.fetch_add(n, Ordering::Relaxed);
                    bad.fetch_add(b, Ordering::Relaxed);
                    bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let (records, bytes) = (records.into_inner(), bytes.into_inner());
    println!(
        "floor {mode}: records={records} bytes={bytes} unparsed={} threads={threads} wall_s={wall:.3} records_per_s={:.0}",
        bad.into_inner(),
        records as f64 / wall
    );
}
