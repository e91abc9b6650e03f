//! `net`: the command-line tool of Net. Inspect, verify, follow and compact
//! RedEX directories; fold CortEX models; make keys and tokens; run a mesh
//! node and query it through its control socket; benchmark the mesh.
//!
//! Built on the crate's Rust API (never the C ABI). Output is text for
//! people, or JSON with `--json`; a failure prints one line on standard
//! error and exits non-zero. See docs/cli.md.

mod bench;
mod cortex;
mod error;
mod identity;
mod mesh;
mod netdb;
mod output;
mod redex;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// Net's command-line tool: RedEX logs, CortEX models, identities and
/// tokens, mesh nodes.
#[derive(Debug, Parser)]
#[command(name = "net", version, propagate_version = true, about, long_about = None)]
struct Cli {
    /// Print JSON instead of text (one document; JSON Lines for entry streams).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect, verify, follow and compact RedEX directories.
    #[command(subcommand)]
    Redex(redex::RedexCommand),
    /// Fold a CortEX model's log and print its state.
    #[command(subcommand)]
    Cortex(cortex::CortexCommand),
    /// Cut a NetDB bundle (tasks and memories at one point) from a RedEX
    /// directory, and open one.
    #[command(subcommand)]
    Netdb(netdb::NetdbCommand),
    /// Make and show identities (32-byte ed25519 seed files).
    #[command(subcommand)]
    Identity(identity::IdentityCommand),
    /// Issue, verify, delegate and show permission tokens (159-byte files).
    #[command(subcommand)]
    Token(identity::TokenCommand),
    /// Run a mesh node in the foreground and query it through its control socket.
    #[command(subcommand)]
    Mesh(mesh::MeshCommand),
    /// Measure mesh throughput and latency between this process and a second
    /// `net` process on loopback.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let result = match cli.command {
        Command::Redex(command) => redex::run(command, out),
        Command::Cortex(command) => cortex::run(command, out),
        Command::Netdb(command) => netdb::run(command, out),
        Command::Identity(command) => identity::run_identity(command, out),
        Command::Token(command) => identity::run_token(command, out),
        Command::Mesh(command) => mesh::run(command, out),
        Command::Bench(args) => bench::run(&args, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message().is_empty() {
                eprintln!("net: error: {e}");
            }
            ExitCode::from(e.code())
        }
    }
}
