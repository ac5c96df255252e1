//! The live commands: `emulate`, `run` (the daemon, with its HTTP API) and
//! `demo` (everything in one process).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use pinstream::http;
use pinstream::kafka::KafkaOptions;
use pinstream::live::{self, LiveOptions};
use pinstream::live_handle::LiveHandle;
use pinstream::metrics::Metrics;
use pinstream::pinterest::emulate::{ArchiveWriter, Emulator, WriterOptions, TOPICS};
use pinstream::topology::Topology;
use pinstream::{engine, query, replay};

use super::args::{Command, DEFAULT_PREFIX};
use super::{load, print_answers, thousands};

/// SIGINT/SIGTERM set the flag: the daemon commits and exits 0.
pub(crate) fn stop_flag() -> Result<Arc<AtomicBool>> {
    signal_flag(None)
}

/// SIGINT/SIGTERM set the returned flag; with `Some(code)`, a signal that
/// finds it already set ends the process at once with that exit code.
pub(crate) fn signal_flag(second_exits: Option<i32>) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Some(code) = second_exits {
            // First: it must see the flag as the signal found it.
            signal_hook::flag::register_conditional_shutdown(sig, code, stop.clone())
                .context("installing a signal handler")?;
        }
        signal_hook::flag::register(sig, stop.clone()).context("installing a signal handler")?;
    }
    Ok(stop)
}

/// Starts the HTTP API next to a live loop (None for `--http off`).
fn start_http(
    opts: Option<http::HttpOptions>,
    topo: &Arc<Topology>,
    handle: &Arc<LiveHandle>,
    kafka: &KafkaOptions,
) -> Result<Option<http::Server>> {
    let Some(opts) = opts else { return Ok(None) };
    let ingest = http::Ingest::new(kafka).context("creating the ingest producer")?;
    let app = http::router(topo.clone(), handle.clone(), Some(ingest), &opts);
    let server = http::Server::start(app, &opts).with_context(|| format!("HTTP API on {}", opts.addr))?;
    eprintln!(
        "http: listening on http://{} (queries /v1/queries, ingest /topics/<topic>, /metrics, /openapi.json){}",
        server.addr(),
        if opts.token.is_some() {
            "; bearer token required on write routes and /metrics"
        } else {
            ""
        }
    );
    Ok(Some(server))
}

pub(crate) fn emulate(cmd: Command) -> Result<ExitCode> {
    let Command::Emulate {
        posts,
        archive,
        brokers,
        rate,
        forever,
        create_topics,
        kafka,
        http,
        kinesis,
        http_token,
        seed,
        prefix,
        partitions,
        flush_size,
        compression,
        layout,
        resend_rate,
    } = cmd
    else {
        unreachable!("dispatched on Command::Emulate")
    };
    if !(0.0..1.0).contains(&resend_rate) {
        bail!("--resend-rate must be in [0, 1)");
    }
    let started = std::time::Instant::now();
    let em = Emulator::new(seed);
    if let Some(url) = http {
        let target = pinstream::pinterest::emulate::http::HttpTarget {
            url: url.clone(),
            kinesis,
            token: http_token,
        };
        let stop = stop_flag()?;
        let posts = if forever { None } else { posts };
        let sent = pinstream::pinterest::emulate::http::post(&em, &target, &prefix, posts, rate, resend_rate, &stop)?;
        eprintln!(
            "sent {} records to {url} ({}, {:.1} s)",
            thousands(sent),
            if kinesis {
                "Kinesis-style PUTs"
            } else {
                "REST Proxy POSTs"
            },
            started.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(brokers) = brokers {
        let opts = kafka.options(&brokers)?;
        let mut topics: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}.{t}")).collect();
        if let Some(n) = create_topics {
            topics.push(format!("{prefix}.dlq"));
            pinstream::kafka::create_topics(&opts, &topics, n).context("creating topics")?;
        }
        let stop = stop_flag()?;
        let posts = if forever { None } else { posts };
        let sent = pinstream::pinterest::emulate::kafka::produce(&em, &opts, &prefix, posts, rate, resend_rate, &stop)?;
        eprintln!(
            "produced {} records to {prefix}.pin|geo|user ({:.1} s)",
            thousands(sent),
            started.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(archive), Some(posts)) = (archive, posts) else {
        bail!("--archive needs --posts")
    };
    let topics: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}.{t}")).collect();
    let opts = WriterOptions {
        dir: archive.clone(),
        partitions,
        flush_size,
        compression,
        layout,
        seed,
    };
    let mut w = ArchiveWriter::new(opts, topics).with_context(|| format!("creating {}", archive.display()))?;
    let mut deliveries = 0u64;
    for d in em.deliveries(posts, resend_rate) {
        w.push(0, &d.pin)?;
        w.push(1, &d.geo)?;
        w.push(2, &d.user)?;
        deliveries += 1;
    }
    let records = w.records;
    let files = w.finish()?;
    eprintln!(
        "wrote {} posts as {} deliveries = {} records in {} objects under {} ({:.1} s)",
        thousands(posts),
        thousands(deliveries),
        thousands(records),
        thousands(files),
        archive.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_daemon(cmd: Command) -> Result<ExitCode> {
    let Command::Run {
        config,
        brokers,
        prefix,
        state_dir,
        topology,
        group,
        commit_interval_ms,
        dlq,
        reset_positions,
        kafka,
        stop_when_idle,
        cache_keys,
        shards,
        max_future_skew,
        http,
        bootstrap_from_archive,
        archive,
    } = cmd
    else {
        unreachable!("dispatched on Command::Run")
    };
    use pinstream::config::{pick, DaemonConfig};
    let stop = stop_flag()?;
    let file = match &config {
        Some(p) => DaemonConfig::load(p).map_err(anyhow::Error::msg)?,
        None => DaemonConfig::default(),
    };
    let (Some(brokers), Some(prefix)) = (pick(brokers, file.brokers.clone()), pick(prefix, file.prefix.clone())) else {
        bail!("--brokers and --prefix are required (or PINSTREAM_BROKERS / PINSTREAM_PREFIX, or brokers / prefix in --config)");
    };
    let topology = pick(topology, file.topology.clone());
    let topo = match load(topology.as_deref()) {
        Ok(t) => Arc::new(t),
        Err(code) => return Ok(code),
    };
    let mut opts = LiveOptions {
        kafka: kafka.options_with(&brokers, &file)?,
        dlq: live::DlqTarget::parse(&pick(dlq, file.dlq.clone()).unwrap_or_else(|| format!("{prefix}.dlq"))),
        reset_positions,
        group: pick(group, file.group.clone()).unwrap_or_else(|| "pinstream".into()),
        state_dir: pick(state_dir, file.state_dir.clone()).unwrap_or_else(|| PathBuf::from("./state")),
        commit_interval: Duration::from_millis(
            pick(commit_interval_ms, file.commit_interval_ms).unwrap_or(1000).max(1),
        ),
        prefix,
        cache_keys,
        shards: shards.map(usize::from),
        max_future_skew,
        stop_when_idle: stop_when_idle.map(Duration::from_secs_f64),
        handle: Some(Arc::new(LiveHandle::new(Arc::new(Metrics::new())))),
        archive_to: archive.target(),
    };
    if let Some(from) = &bootstrap_from_archive {
        if opts.reset_positions && replay::is_state_dir(&opts.state_dir) {
            std::fs::remove_dir_all(&opts.state_dir)
                .with_context(|| format!("--reset-positions: deleting {}", opts.state_dir.display()))?;
        }
        let s3 = pinstream::source::s3::S3Options {
            endpoint: archive.s3.s3_endpoint.clone(),
            region: archive.s3.s3_region.clone(),
            ..Default::default()
        };
        let s = replay::bootstrap(
            topo.clone(),
            from,
            s3,
            &opts.state_dir,
            &opts.prefix,
            opts.max_future_skew,
        )?;
        eprintln!(
            "bootstrap: {} records from {} objects of {} ({} already in the state, {} dead letters, {} gaps); now consuming from Kafka",
            thousands(s.records),
            thousands(s.files as u64),
            from.display(),
            thousands(s.already_done),
            thousands(s.dead_letters),
            s.gaps.len()
        );
        for g in &s.gaps {
            eprintln!("  {g}");
        }
        // The reset was done before the bootstrap: not again after it.
        opts.reset_positions = false;
    }
    let handle = opts.handle.clone().expect("set above");
    let server = start_http(http.options(&file)?, &topo, &handle, &opts.kafka)?;
    let result = live::run(topo, &opts, &stop);
    if let Some(s) = server {
        s.stop();
    }
    let (engine, stats) = result?;
    let secs = stats.active.as_secs_f64().max(1e-9);
    let h = &stats.latency_ms;
    eprintln!(
        "stopped: {} records, {} dead letters, {} re-deliveries skipped, {} commits",
        thousands(stats.records()),
        thousands(stats.dead_letters),
        thousands(stats.skipped),
        stats.commits
    );
    eprintln!(
                "stats: records={} active_seconds={:.3} records_per_s={:.0} latency_ms_p50={} latency_ms_p99={} latency_ms_max={} transit_ms_p50={} transit_ms_p99={} commit_ms_p50={} commit_ms_p99={} peak_rss_mb={} shards={} input_wait_s={:.3}",
                stats.records(),
                secs,
                stats.records() as f64 / secs,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
                stats.transit_ms.value_at_quantile(0.5),
                stats.transit_ms.value_at_quantile(0.99),
                stats.commit_us.value_at_quantile(0.5) / 1000,
                stats.commit_us.value_at_quantile(0.99) / 1000,
                replay::peak_rss_bytes().unwrap_or(0) >> 20,
                engine.shards(),
                stats.input_wait.as_secs_f64()
            );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn demo(cmd: Command) -> Result<ExitCode> {
    let Command::Demo {
        posts,
        rate,
        state_dir,
        format,
        max_future_skew,
        reset_positions,
        http,
        archive,
    } = cmd
    else {
        unreachable!("dispatched on Command::Demo")
    };
    // Signals first: SIGTERM while the broker starts must stop cleanly too.
    let stop = stop_flag()?;
    let topo = Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let mock = rdkafka::mocking::MockCluster::new(1).context("starting the in-process Kafka mock cluster")?;
    let prefix = DEFAULT_PREFIX;
    for t in TOPICS {
        mock.create_topic(&format!("{prefix}.{t}"), 3, 1)?;
    }
    mock.create_topic(&format!("{prefix}.dlq"), 1, 1)?;
    let brokers = mock.bootstrap_servers();
    eprintln!("demo: in-process Kafka at {brokers}; emulator producing {rate} records/s; Ctrl-C to stop");
    let temp = replay::temp_state_dir()?;
    let dir = state_dir.unwrap_or_else(|| temp.path().to_path_buf());
    let kafka = KafkaOptions {
        brokers: brokers.clone(),
        ..Default::default()
    };
    let opts = LiveOptions {
        kafka: kafka.clone(),
        prefix: prefix.to_string(),
        group: "pinstream-demo".into(),
        state_dir: dir,
        commit_interval: Duration::from_millis(500),
        dlq: live::DlqTarget::Topic(format!("{prefix}.dlq")),
        reset_positions,
        cache_keys: engine::DEFAULT_CACHE_KEYS,
        shards: None,
        max_future_skew,
        // With --posts: stop once everything produced has been consumed.
        stop_when_idle: posts.map(|_| Duration::from_secs(3)),
        handle: Some(Arc::new(LiveHandle::new(Arc::new(Metrics::new())))),
        archive_to: archive.target(),
    };
    let handle = opts.handle.clone().expect("set above");
    let server = start_http(
        http.options(&pinstream::config::DaemonConfig::default())?,
        &topo,
        &handle,
        &kafka,
    )?;
    let (engine, stats) = std::thread::scope(|scope| -> Result<_> {
        let (stop, kafka) = (&stop, &kafka);
        let producer = scope.spawn(move || {
            pinstream::pinterest::emulate::kafka::produce(&Emulator::new(100), kafka, prefix, posts, rate, 0.23, stop)
        });
        let result = live::run(topo.clone(), &opts, stop);
        stop.store(true, Ordering::Relaxed); // ends a --forever producer
        let sent = producer
            .join()
            .map_err(|_| anyhow::anyhow!("emulator thread panicked"))??;
        eprintln!("demo: produced {} records", thousands(sent));
        Ok(result?)
    })?;
    if let Some(s) = server {
        s.stop();
    }
    eprintln!(
        "demo: consumed {} records, {} dead letters, {} commits",
        thousands(stats.records()),
        thousands(stats.dead_letters),
        stats.commits
    );
    print_answers(&query::answers(engine.store(), &topo)?, format)?;
    drop(engine);
    drop(mock);
    Ok(ExitCode::SUCCESS)
}
