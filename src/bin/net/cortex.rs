//! `net cortex`: fold a model's log (read-only) and print its state.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use net::cortex::{MemoriesFold, ModelFold, ModelQuery, ModelRow, ModelState, TasksFold};
use serde_json::{Value, json};

use crate::error::{CliError, Context, Result};
use crate::output::{Output, joined, rfc3339_ns};
use crate::redex::{Check, Snapshot, resolve_channel};

/// The `net cortex` subcommands.
#[derive(Debug, Subcommand)]
pub enum CortexCommand {
    /// Fold the tasks model (channel cortex/tasks) and print its tasks.
    Tasks(ModelArgs),
    /// Fold the memories model (channel cortex/memories) and print its memories.
    Memories(ModelArgs),
}

/// Arguments of a model command.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The RedEX base directory the model lives in.
    dir: PathBuf,
    /// A query as JSON, the same form the C ABI takes (e.g.
    /// '{"status":"pending","order_by":"created_desc","limit":10}').
    #[arg(long)]
    query: Option<String>,
}

/// Runs a `net cortex` subcommand.
pub fn run(command: CortexCommand, out: Output) -> Result<()> {
    match command {
        CortexCommand::Tasks(args) => show::<TasksFold>(&args, out, task_line),
        CortexCommand::Memories(args) => show::<MemoriesFold>(&args, out, memory_line),
    }
}

/// One task row (its JSON form) as a line of text.
pub fn task_line(task: &Value) -> String {
    format!(
        "{:>6}  {:<9}  {}  {}",
        task["id"],
        task["status"].as_str().unwrap_or(""),
        time(&task["updated_ns"]),
        task["title"].as_str().unwrap_or("")
    )
}

/// One memory row (its JSON form) as a line of text.
pub fn memory_line(memory: &Value) -> String {
    format!(
        "{:>6}  {}  {}  [{}]  {}{}",
        memory["id"],
        time(&memory["updated_ns"]),
        memory["source"].as_str().unwrap_or(""),
        joined(&memory["tags"]),
        if memory["pinned"].as_bool() == Some(true) {
            "(pinned) "
        } else {
            ""
        },
        memory["content"].as_str().unwrap_or("")
    )
}

fn time(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".to_owned(), rfc3339_ns)
}

/// What folding a log gave.
struct Folded<S> {
    state: S,
    applied: u64,
    last_seq: Option<u64>,
    errors: Vec<String>,
}

/// Folds model `F`'s channel under `dir` from the start, without opening
/// it (no recovery, no lock): every valid entry in seq order; damaged
/// entries and events the fold refuses are reported and skipped, as the
/// adapter's `LogAndContinue` policy does.
fn fold<F: ModelFold>(dir: &std::path::Path) -> Result<Folded<F::State>> {
    let channel = resolve_channel(dir, Some(F::CHANNEL))?;
    let snapshot = Snapshot::read(channel)?;
    let mut folded = Folded {
        state: F::State::default(),
        applied: 0,
        last_seq: None,
        errors: Vec::new(),
    };
    let Some(live) = &snapshot.live else {
        return Ok(folded);
    };
    let dat = live.open_dat()?;
    let model = F::default();
    for record in &live.records {
        match dat.check(record)? {
            Check::Valid(payload) => match model.apply(&mut folded.state, record.seq, &payload) {
                Ok(()) => {
                    folded.applied += 1;
                    folded.last_seq = Some(record.seq);
                }
                Err(e) => folded.errors.push(format!("seq {}: {e}", record.seq)),
            },
            Check::Hole => {}
            Check::Mismatch { .. } | Check::OutOfRange { .. } => folded.errors.push(format!(
                "seq {}: damaged entry (see `net redex verify`)",
                record.seq
            )),
        }
    }
    Ok(folded)
}

fn show<F: ModelFold>(args: &ModelArgs, out: Output, line: impl Fn(&Value) -> String) -> Result<()>
where
    F::Query: serde::de::DeserializeOwned,
{
    let query: F::Query = match &args.query {
        Some(text) => serde_json::from_str::<F::Query>(text)
            .map_err(|e| CliError::new(format!("--query: {e}")))?,
        None => F::Query::default(),
    };
    let folded = fold::<F>(&args.dir)?;
    let rows: Vec<ModelRow<F>> = query.run(&folded.state);
    let rows: Vec<Value> = rows
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .context("encoding rows")?;
    let value = json!({
        "model": F::NAME,
        "channel": F::CHANNEL,
        "applied": folded.applied,
        "folded_through_seq": folded.last_seq,
        "total": folded.state.rows().len(),
        "errors": folded.errors,
        F::NAME: rows,
    });
    for error in &folded.errors {
        eprintln!("net: warning: {} {error}", F::CHANNEL);
    }
    out.emit(&value, |out| {
        for row in &rows {
            out.line(line(row))?;
        }
        out.line(format!(
            "{} of {} {} (folded {} events through seq {})",
            rows.len(),
            folded.state.rows().len(),
            F::NAME,
            folded.applied,
            folded
                .last_seq
                .map_or_else(|| "-".to_owned(), |s| s.to_string())
        ))
    })
}
