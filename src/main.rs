//! The `pinstream` command line.

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::args::{Cli, Command};

// mimalloc: the engine frees on one thread what the parsers allocated on
// others; glibc's arenas made that a tenth of the replay profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        cmd @ (Command::Validate { .. }
        | Command::Clean { .. }
        | Command::Positions { .. }
        | Command::Answers { .. }
        | Command::Replay { .. }) => cli::batch::run(cmd),
        Command::Archive { command } => cli::archive::run(command),
        cmd @ Command::Emulate { .. } => cli::live::emulate(cmd),
        cmd @ Command::Run { .. } => cli::live::run_daemon(cmd),
        cmd @ Command::Demo { .. } => cli::live::demo(cmd),
    }
}

/// No transparent huge pages for this process. Each fresh 2 MB page is
/// zeroed whole on its first touch, and on a VM that first touch is slow
/// (about 3 ms each here: `clear_page_erms` was 8% of a replay's profile).
/// Measured with `MIMALLOC_ALLOW_THP=0`, which does the same at mimalloc's
/// start (7 alternating whole-process pairs, 1,000,000-post replay): wall 0.92x, CPU 0.93x,
/// peak RSS 163 vs 206 MB. Set here, as that option is read before `main`;
/// the few pages touched before this keep what they have.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and changes
    // only how this process's future page faults are served.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Log filter without `RUST_LOG`: warnings, except the AWS SDK's region
/// lookup in the EC2 instance metadata, which fails on every host that is
/// not an EC2 instance (three multi-line warnings per S3 command) while
/// the region falls back to `--s3-region` or us-east-1; a missing
/// credential still ends the command with its own error.
const DEFAULT_LOG: &str = "warn,aws_config::imds::region=error";

fn main() -> ExitCode {
    no_huge_pages();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG.into()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        // A closed stdout (`pinstream positions | head -1`) ends the output,
        // not the process with a panic.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, each cause left out when the message before it
/// already says it (typed errors that quote their source would otherwise
/// print it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
