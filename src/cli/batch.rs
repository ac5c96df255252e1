//! The batch commands: `validate`, `clean`, `positions`, `answers` and
//! `replay` (what they print; the work is the library's).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::args::Command;
use super::{load, open_state, print_answers, thousands};
use pinstream::engine::driver::BadObjects;
use pinstream::engine::prepare::clean;
use pinstream::query;
use pinstream::replay::{self, ReplayOptions};
use pinstream::sink::{file::FileSink, DeadLetterSink, Discard};
use pinstream::source::integrity::across_dirs_hint;
use pinstream::source::s3::S3Options;
use pinstream::state::store;

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Validate { file } => {
            let topo = match load(file.as_deref()) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "ok: topology `{}`: {} sources, join `{}` on `{}`, {} aggregates, {} queries ({} in the answer)",
                topo.spec.name,
                topo.sources.len(),
                topo.join.name,
                topo.join.key,
                topo.aggregates.len(),
                topo.queries.len(),
                topo.answers.len()
            )?;
            for s in &topo.sources {
                let kept: Vec<&str> = s.projection.iter().map(|n| &**n).collect();
                writeln!(
                    out,
                    "  source {:<6} topic {:<18} key {:<5} {} ops, join keeps [{}]",
                    s.name,
                    s.topic,
                    &*s.key,
                    s.ops.len(),
                    kept.join(", ")
                )?;
            }
            for a in &topo.aggregates {
                let window = a
                    .window
                    .as_ref()
                    .map(|(f, w)| format!(" window {}s on {} kept {}s", w.size, f, w.retention))
                    .unwrap_or_default();
                writeln!(out, "  store  {:<34} {}{window}: {}", a.name, a.function, a.description)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Clean { source, topology, file } => {
            let topo = match load(topology.as_deref()) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            let Some(src) = topo.sources.iter().position(|s| s.name == source) else {
                bail!(
                    "unknown source `{source}` (sources: {})",
                    topo.sources
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let input: Box<dyn BufRead> = match &file {
                Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
                    std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
                )),
                _ => Box::new(std::io::stdin().lock()),
            };
            let mut out = std::io::stdout().lock();
            let mut rejected = 0u64;
            for (n, line) in input.split(b'\n').enumerate() {
                let line = line?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match clean(&topo, src, &line) {
                    Ok(rec) => writeln!(out, "{}", rec.to_json())?,
                    Err(reason) => {
                        rejected += 1;
                        eprintln!("line {}: rejected: {reason}", n + 1);
                    }
                }
            }
            Ok(if rejected > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Positions { state_dir, topology } => {
            let (_, store) = match open_state(&state_dir, topology.as_deref())? {
                Ok(opened) => opened,
                Err(code) => return Ok(code),
            };
            let mut all: Vec<_> = store.positions()?.into_iter().collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = std::io::stdout().lock();
            for ((topic, partition), ranges) in all {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"topic": topic, "partition": partition, "ranges": ranges.ranges()})
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Answers {
            state_dir,
            topology,
            format,
        } => {
            let (topo, store) = match open_state(&state_dir, topology.as_deref())? {
                Ok(opened) => opened,
                Err(code) => return Ok(code),
            };
            if store.aggregates_deferred()? {
                bail!(
                    "{} holds a replay that stopped before it aggregated (batch plan): its aggregates are incomplete; \
                     run the same replay again to finish it (records already applied are not read twice)",
                    state_dir.display()
                );
            }
            print_answers(&query::answers(&store, &topo)?, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            archive,
            topology,
            s3,
            s3_in_flight,
            s3_page_size,
            topics,
            select,
            state_dir,
            prefix,
            format,
            dead_letter,
            commit_every,
            cache_keys,
            shards,
            max_future_skew,
            plan,
            strict,
            skip_bad_objects,
            quiet,
        } => {
            let topo = match load(topology.as_deref()) {
                Ok(t) => Arc::new(t),
                Err(code) => return Ok(code),
            };
            let temp = if state_dir.is_none() {
                Some(replay::temp_state_dir().context("creating a temporary state dir")?)
            } else {
                None
            };
            let dir = state_dir
                .clone()
                .unwrap_or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default());
            let mut dead: Box<DeadLetterSink> = match &dead_letter {
                Some(p) => Box::new(FileSink::create(p).with_context(|| format!("creating {}", p.display()))?),
                None => Box::new(Discard),
            };
            // A temporary state dir is deleted at exit: nothing in it has to be durable.
            let durability = if temp.is_some() {
                store::Durability::Ephemeral
            } else {
                store::Durability::Flush
            };
            let opts = ReplayOptions {
                archive,
                s3: S3Options {
                    endpoint: s3.s3_endpoint,
                    region: s3.s3_region,
                    max_in_flight: s3_in_flight.max(1),
                    page_size: s3_page_size.clamp(1, 1000),
                    ..S3Options::default()
                },
                topics,
                select: select.selection()?,
                state_dir: dir,
                prefix,
                prefix_must_match: true,
                commit_every: commit_every.max(1),
                cache_keys,
                shards: shards.map(usize::from),
                progress: !quiet,
                durability,
                max_future_skew,
                batch_plan: plan == super::args::Plan::Batch,
                bad_objects: if skip_bad_objects {
                    BadObjects::Skip
                } else {
                    BadObjects::Fail
                },
                // The replay stops before its next commit (`source/interrupt.rs`);
                // a second signal exits at once.
                stop: Some(super::live::signal_flag(Some(130))?),
            };
            // A temporary state is thrown away after the answer: only the
            // aggregates the answer reads are worth computing.
            let topo = if temp.is_some() {
                let cut = topo.answering_only().map_err(|errs| {
                    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
                    anyhow::anyhow!("the topology cut down to its answer: {}", lines.join("; "))
                })?;
                Arc::new(cut)
            } else {
                topo
            };
            let (engine, s) = match replay::replay(topo.clone(), &opts, dead.as_mut()) {
                Err(e) if e.is_interrupted() => {
                    match &state_dir {
                        Some(d) => eprintln!(
                            "interrupted: {} holds every record up to its last commit; run the same command to go on \
                             (records already applied are not read twice)",
                            d.display()
                        ),
                        None => eprintln!("interrupted: no answers (the temporary state is removed)"),
                    }
                    return Ok(ExitCode::from(130));
                }
                r => r?,
            };
            let problems = s.skipped.len() + s.read_errors.len() + s.unknown_topics.len() + s.gaps.len();
            if strict && problems > 0 {
                for line in s.skipped.iter().chain(&s.read_errors).chain(&s.gaps) {
                    eprintln!("  {line}");
                }
                for t in &s.unknown_topics {
                    eprintln!("  topic `{t}`: no source reads it");
                }
                bail!(
                    "--strict: {} skipped files, {} unreadable files, {} unknown topics, {} gaps (no answers printed)",
                    s.skipped.len(),
                    s.read_errors.len(),
                    s.unknown_topics.len(),
                    s.gaps.len()
                );
            }
            if opts.select.has_range() && s.files == 0 && s.no_date > 0 {
                bail!(
                    "--from/--to selected nothing: {} archive objects name no date in their path (year=/month=/day=[/hour=] directories, the TimeBasedPartitioner layout; the DefaultPartitioner's partition=N/ has none)",
                    thousands(s.no_date)
                );
            }
            let answers = query::answers(engine.store(), &topo)?;
            print_answers(&answers, format)?;
            if !quiet {
                let secs = s.elapsed.as_secs_f64().max(1e-9);
                let rss = replay::peak_rss_bytes().unwrap_or(0);
                eprintln!(
                    "replayed {} records ({:.1} MB in {} files, prefix `{}`) in {:.2} s: {} records/s, {:.1} MB/s, peak RSS {} MB",
                    thousands(s.records),
                    s.bytes as f64 / 1e6,
                    s.files,
                    s.prefix,
                    secs,
                    thousands((s.records as f64 / secs) as u64),
                    s.bytes as f64 / 1e6 / secs,
                    rss >> 20
                );
                let per_topic: Vec<String> = s
                    .per_topic
                    .iter()
                    .map(|(t, n)| format!("{t} {}", thousands(*n)))
                    .collect();
                eprintln!("  per topic: {}", per_topic.join(", "));
                let e = &s.engine;
                eprintln!(
                    "  joined rows {}, unchanged re-deliveries {}, replaced rows {}, already in state {}, commits {}",
                    thousands(e.joined),
                    thousands(e.unchanged),
                    thousands(e.replaced),
                    thousands(s.already_done),
                    e.commits
                );
                eprintln!(
                    "  engine thread: waited {:.2} s for parsed input, {:.2} s in {} commits",
                    s.input_wait.as_secs_f64(),
                    e.commit_time.as_secs_f64(),
                    e.commits
                );
                if e.agg.late > 0 {
                    eprintln!(
                        "  windowed updates outside retention {} (live windows keep only recent event time)",
                        thousands(e.agg.late)
                    );
                }
                if e.agg.future > 0 {
                    eprintln!(
                        "  windowed updates too far in the future {} (event time beyond the wall clock + --max-future-skew)",
                        thousands(e.agg.future)
                    );
                }
                let reasons: Vec<String> = s.dead_reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
                match (&dead_letter, s.dead_letters) {
                    (_, 0) => eprintln!("  dead letters 0"),
                    (Some(p), n) => eprintln!(
                        "  dead letters {} → {} ({})",
                        thousands(n),
                        p.display(),
                        reasons.join("; ")
                    ),
                    (None, n) => eprintln!(
                        "  dead letters {} ({}); pass --dead-letter FILE to keep them",
                        thousands(n),
                        reasons.join("; ")
                    ),
                }
                for t in &s.unknown_topics {
                    eprintln!("  skipped topic `{t}`: no source reads it");
                }
                for g in s.gaps.iter().take(20) {
                    eprintln!("  {g}");
                }
                if s.gaps.len() > 20 {
                    eprintln!("  … and {} more gaps", s.gaps.len() - 20);
                }
                if s.overlaps > 0 {
                    eprintln!(
                        "  overlapping objects {} repeating {} records (counted once)",
                        thousands(s.overlaps),
                        thousands(s.overlap_records)
                    );
                    if s.overlap_records_across_dirs > 0 {
                        eprintln!("  {}", across_dirs_hint(s.overlap_records_across_dirs));
                    }
                }
                if s.out_of_order > 0 {
                    eprintln!(
                        "  {} objects came below the start offset of the one before them in their partition (keys not \
                         zero-padded to one width, or offsets back in an earlier time directory): each record still \
                         counts once, but where a key's row changed between such objects the later offset may not \
                         have won; a local copy of the archive is read in offset order",
                        thousands(s.out_of_order)
                    );
                }
                if s.not_selected > 0 {
                    eprintln!(
                        "  not selected {} archive objects (--partitions, --from/--to){}",
                        thousands(s.not_selected),
                        if s.no_date > 0 {
                            format!(
                                "; {} of them have no year=/month=/day= directories, so no time of their own",
                                thousands(s.no_date)
                            )
                        } else {
                            String::new()
                        }
                    );
                }
                if s.pruned_dirs > 0 {
                    eprintln!(
                        "  not listed {} year=/month=/day=/hour= directories outside --from/--to",
                        thousands(s.pruned_dirs)
                    );
                }
                if let Some(x) = &s.s3 {
                    eprintln!(
                        "  S3: {} keys listed in {} pages, {} objects read, {} retried requests, {} objects already in the state (not downloaded)",
                        thousands(x.listed),
                        thousands(x.pages),
                        thousands(s.files as u64),
                        thousands(x.retries),
                        thousands(x.already_done)
                    );
                }
                for e in &s.read_errors {
                    eprintln!("  read error: {e}");
                }
                for k in s.skipped.iter().take(10) {
                    eprintln!("  skipped file {k}");
                }
                if s.skipped.len() > 10 {
                    eprintln!("  … and {} more skipped files", s.skipped.len() - 10);
                }
                eprintln!(
                    "stats: records={} bytes={} seconds={:.3} records_per_s={:.0} mb_per_s={:.1} peak_rss_mb={} dead_letters={} skipped_files={} unreadable_files={} unknown_topics={} not_selected={} files={} pruned_dirs={} gaps={} gap_records={} overlaps={} overlap_records={}{}",
                    s.records,
                    s.bytes,
                    secs,
                    s.records as f64 / secs,
                    s.bytes as f64 / 1e6 / secs,
                    rss >> 20,
                    s.dead_letters,
                    s.skipped.len(),
                    s.read_errors.len(),
                    s.unknown_topics.len(),
                    s.not_selected,
                    s.files,
                    s.pruned_dirs,
                    s.gaps.len(),
                    s.gap_records,
                    s.overlaps,
                    s.overlap_records,
                    s.s3.as_ref().map_or(String::new(), |x| format!(
                        " s3_objects={} s3_listed={} s3_pages={} s3_retries={} s3_already_done={}",
                        s.files, x.listed, x.pages, x.retries, x.already_done
                    ))
                );
            }
            if temp.is_some() {
                // Regression (compare.sh profile): freeing the join table
                // entry by entry took ~5% of a replay's CPU, serially at exit.
                engine.leak_join_cache();
            } else {
                drop(engine);
            }
            drop(temp);
            Ok(ExitCode::SUCCESS)
        }
        _ => unreachable!("dispatched on the batch commands"),
    }
}
