//! `net netdb`: cut a NetDB bundle (both CortEX models at one point) from a
//! RedEX directory, and open a bundle to show what it holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use net::cortex::{ModelAdapter, ModelFold};
use net::netdb::{NetDb, NetDbBundle};
use net::redex::Redex;
use serde_json::{Value, json};

use crate::cortex::{memory_line, task_line};
use crate::error::{CliError, Context, Result};
use crate::output::{Output, human_bytes};
use crate::redex::resolve_channel;

/// The `net netdb` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetdbCommand {
    /// Write a bundle of DIR's tasks and memories models, cut at one point
    /// (opens DIR as its writer: a directory a running process holds is
    /// refused).
    Snapshot(SnapshotArgs),
    /// Open the models from a bundle — over DIR's logs when given (the
    /// events after the bundle are folded on top), else alone — and print
    /// their rows.
    Restore(RestoreArgs),
}

/// Which models (both when neither flag is given).
#[derive(Debug, Args)]
pub struct ModelFlags {
    /// The tasks model (channel cortex/tasks).
    #[arg(long)]
    tasks: bool,
    /// The memories model (channel cortex/memories).
    #[arg(long)]
    memories: bool,
}

/// Arguments of `net netdb snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The RedEX base directory holding cortex/tasks and/or cortex/memories.
    dir: PathBuf,
    /// Where to write the bundle (STORAGE.md §12 bytes).
    #[arg(long, short)]
    out: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    models: ModelFlags,
}

/// Arguments of `net netdb restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A bundle written by `net netdb snapshot` or `NetDb::snapshot`.
    bundle: PathBuf,
    /// The RedEX base directory whose logs the bundle was cut from.
    dir: Option<PathBuf>,
}

/// Runs a `net netdb` subcommand.
pub fn run(command: NetdbCommand, out: Output) -> Result<()> {
    match command {
        NetdbCommand::Snapshot(args) => snapshot(&args, out),
        NetdbCommand::Restore(args) => restore(&args, out),
    }
}

/// Which of the two models to open: the flags, or every model whose
/// channel exists under `dir` (a model asked for by flag must exist; an
/// open would otherwise create an empty channel in someone's directory).
fn models_in(dir: &Path, flags: &ModelFlags) -> Result<(bool, bool)> {
    let has = |channel: &str| resolve_channel(dir, Some(channel)).is_ok();
    let (has_tasks, has_memories) = (has("cortex/tasks"), has("cortex/memories"));
    if !flags.tasks && !flags.memories {
        if !has_tasks && !has_memories {
            return Err(CliError::new(format!(
                "no CortEX model under {} (neither cortex/tasks nor cortex/memories)",
                dir.display()
            )));
        }
        return Ok((has_tasks, has_memories));
    }
    for (asked, present, channel) in [
        (flags.tasks, has_tasks, "cortex/tasks"),
        (flags.memories, has_memories, "cortex/memories"),
    ] {
        if asked && !present {
            return Err(CliError::new(format!(
                "no RedEX channel {channel:?} under {}",
                dir.display()
            )));
        }
    }
    Ok((flags.tasks, flags.memories))
}

fn open_db(redex: &Redex, tasks: bool, memories: bool, bundle: Option<&[u8]>) -> Result<NetDb> {
    let mut builder = NetDb::builder(redex).persistent(redex.base_dir().is_some());
    if tasks {
        builder = builder.with_tasks();
    }
    if memories {
        builder = builder.with_memories();
    }
    // Opening folds each model's log to its end: a spinner on a terminal
    // while that runs (a large log takes a while).
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message("opening NetDB: folding the models' logs");
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let db = match bundle {
        Some(bytes) => builder.build_from_bundle(bytes),
        None => builder.build(),
    };
    spinner.finish_and_clear();
    db.context("opening NetDB")
}

fn snapshot(args: &SnapshotArgs, out: Output) -> Result<()> {
    if args.out.exists() && !args.force {
        return Err(CliError::new(format!(
            "{} exists (--force replaces it)",
            args.out.display()
        )));
    }
    let (tasks, memories) = models_in(&args.dir, &args.models)?;
    let redex = Redex::with_persistent_dir(&args.dir);
    let db = open_db(&redex, tasks, memories, None)?;
    let bundle = db.snapshot().context("cutting the bundle")?;
    db.close().context("closing NetDB")?;
    let bytes = bundle.encode();
    write_atomically(&args.out, &bytes)?;
    let value = json!({
        "bundle": args.out.display().to_string(),
        "bytes": bytes.len(),
        "models": models_json(&bundle),
    });
    out.emit(&value, |out| {
        out.line(format!(
            "wrote {} ({})",
            args.out.display(),
            human_bytes(bytes.len() as u64)
        ))?;
        for (name, snapshot) in [("tasks", &bundle.tasks), ("memories", &bundle.memories)] {
            if let Some(snapshot) = snapshot {
                out.line(format!(
                    "  {name:<8} through seq {}",
                    seq_text(snapshot.last_seq)
                ))?;
            }
        }
        Ok(())
    })
}

fn restore(args: &RestoreArgs, out: Output) -> Result<()> {
    let bytes =
        std::fs::read(&args.bundle).context(format!("reading {}", args.bundle.display()))?;
    let bundle = NetDbBundle::decode(&bytes).map_err(|e| {
        CliError::new(format!(
            "{}: not a NetDB bundle: {e}",
            args.bundle.display()
        ))
    })?;
    let (tasks, memories) = (bundle.tasks.is_some(), bundle.memories.is_some());
    let redex = match &args.dir {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(CliError::new(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            Redex::with_persistent_dir(dir)
        }
        None => Redex::new(),
    };
    let db = open_db(&redex, tasks, memories, Some(&bytes))?;
    let mut value = json!({
        "bundle": args.bundle.display().to_string(),
        "dir": args.dir.as_ref().map(|d| d.display().to_string()),
        "models": models_json(&bundle),
    });
    if let Some(model) = db.try_tasks() {
        value["tasks"] = rows(model)?;
    }
    if let Some(model) = db.try_memories() {
        value["memories"] = rows(model)?;
    }
    db.close().context("closing NetDB")?;
    out.emit(&value, |out| {
        for (name, line) in [
            ("tasks", task_line as fn(&Value) -> String),
            ("memories", memory_line),
        ] {
            let Some(model) = value.get(name) else {
                continue;
            };
            for row in model["rows"].as_array().into_iter().flatten() {
                out.line(line(row))?;
            }
            out.line(format!(
                "{} {name} (bundle through seq {}, applied through seq {})",
                model["rows"].as_array().map_or(0, Vec::len),
                seq_text(value["models"][name]["last_seq"].as_u64()),
                seq_text(model["applied_through_seq"].as_u64()),
            ))?;
        }
        Ok(())
    })
}

/// Every row of a model, with its watermark.
fn rows<F: ModelFold>(model: &ModelAdapter<F>) -> Result<Value> {
    let rows: Vec<Value> = model
        .find_many(&F::Query::default())
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .context("encoding rows")?;
    Ok(json!({
        "rows": rows,
        "applied_through_seq": model.adapter().applied_through_seq(),
    }))
}

fn models_json(bundle: &NetDbBundle) -> Value {
    let mut models = json!({});
    for (name, snapshot) in [("tasks", &bundle.tasks), ("memories", &bundle.memories)] {
        if let Some(snapshot) = snapshot {
            models[name] =
                json!({"last_seq": snapshot.last_seq, "state_bytes": snapshot.bytes.len()});
        }
    }
    models
}

fn seq_text(seq: Option<u64>) -> String {
    seq.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames
/// it over `path`: a crash leaves the old file or the new one, never half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::new(format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.context(format!("writing {}", path.display()))
}
