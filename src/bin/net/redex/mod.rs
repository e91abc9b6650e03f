//! `net redex`: list, inspect, read, follow, verify and compact RedEX
//! directories. Everything but `compact` is read-only and works while a
//! writer has the channel open.

mod reader;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use net::redex::format::IdxRecord;
use net::redex::{Redex, RedexFileConfig, RetentionPolicy};
use serde_json::{Value, json};

use crate::error::{CliError, Context, EXIT_CORRUPT, Result};
use crate::output::{Output, PayloadFormat, human_bytes, payload_json, rfc3339_ns, show_payload};
pub use reader::{Channel, Check, Snapshot, resolve_channel};
use reader::{Follower, LiveSource, ManifestState, find_channels};

/// The `net redex` subcommands.
#[derive(Debug, Subcommand)]
pub enum RedexCommand {
    /// List the channels under a directory: generation, entries, seq range, size.
    Ls(DirArgs),
    /// Show one channel in detail: manifest, generations, files, seqs, timestamps.
    Stat(ChannelArgs),
    /// Print a channel's entries: seq, time, size and payload (text or hex).
    Cat(CatArgs),
    /// Print the last entries of a channel; with -f, keep printing new appends.
    Tail(TailArgs),
    /// Check manifest, generations, every index record and every payload
    /// checksum; report each problem with its file and byte offset. Exits 3
    /// when an error is found, 0 when there are only warnings or nothing.
    Verify(ChannelArgs),
    /// Rewrite a channel into a fresh generation (dropping damaged entries'
    /// bytes), or apply retention limits. Opens the channel as its writer:
    /// runs recovery and needs that no other process has it open.
    Compact(CompactArgs),
}

/// A RedEX base directory.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// The RedEX base directory (the one given to `Redex::with_persistent_dir`),
    /// or one channel's directory.
    pub dir: PathBuf,
}

/// A channel under a base directory.
#[derive(Debug, Args)]
pub struct ChannelArgs {
    /// The RedEX base directory, or one channel's directory.
    pub dir: PathBuf,
    /// The channel name (`a/b`); optional when DIR is a channel's directory or
    /// holds a single channel (`verify` and `stat` then cover every channel).
    pub channel: Option<String>,
}

/// How entries are printed.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// How to show payloads (JSON output always has hex, and text when UTF-8).
    #[arg(long, value_enum, default_value_t = PayloadFormat::Auto)]
    pub format: PayloadFormat,
    /// Show at most this many bytes of each payload (text output).
    #[arg(long, default_value_t = 256)]
    pub max_bytes: usize,
}

/// Arguments of `net redex cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    #[command(flatten)]
    target: ChannelArgs,
    /// First seq to print.
    #[arg(long)]
    from: Option<u64>,
    /// Last seq to print (inclusive).
    #[arg(long)]
    to: Option<u64>,
    /// Print at most this many entries.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    show: ShowArgs,
}

/// Arguments of `net redex tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    target: ChannelArgs,
    /// How many of the last entries to print first.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: usize,
    /// Keep running and print entries as they are appended (across compactions).
    #[arg(short, long)]
    follow: bool,
    /// How often to look for new entries with -f, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    interval_ms: u64,
    #[command(flatten)]
    show: ShowArgs,
}

/// Arguments of `net redex compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The RedEX base directory.
    pub dir: PathBuf,
    /// The channel name (optional when DIR holds a single channel).
    pub channel: Option<String>,
    /// Keep at most this many entries (the oldest go).
    #[arg(long)]
    max_events: Option<u64>,
    /// Keep at most this many bytes (20 per inline entry, 20 + length per heap entry).
    #[arg(long)]
    max_bytes: Option<u64>,
    /// Remove entries older than this many seconds.
    #[arg(long)]
    max_age_secs: Option<u64>,
    /// When the live generation lost its idx or dat, keep what can be proven
    /// instead of refusing (see docs/redex.md).
    #[arg(long)]
    repair: bool,
}

/// Runs a `net redex` subcommand.
pub fn run(command: RedexCommand, out: Output) -> Result<()> {
    match command {
        RedexCommand::Ls(args) => ls(&args, out),
        RedexCommand::Stat(args) => stat(&args, out),
        RedexCommand::Cat(args) => cat(&args, out),
        RedexCommand::Tail(args) => tail(&args, out),
        RedexCommand::Verify(args) => verify_cmd(&args, out),
        RedexCommand::Compact(args) => compact(&args, out),
    }
}

/// The channels a command covers: the named one, or all under DIR.
fn channels_of(args: &ChannelArgs) -> Result<Vec<Channel>> {
    match &args.channel {
        Some(_) => Ok(vec![resolve_channel(&args.dir, args.channel.as_deref())?]),
        None => {
            let channels = find_channels(&args.dir)?;
            if channels.is_empty() {
                return Err(CliError::new(format!(
                    "no RedEX channel under {}",
                    args.dir.display()
                )));
            }
            Ok(channels)
        }
    }
}

fn generation_name(snapshot: &Snapshot) -> String {
    match &snapshot.live {
        None => "-".to_owned(),
        Some(live) => match live.generation {
            Some(g) => g.dir_name(),
            None => "legacy".to_owned(),
        },
    }
}

fn summary_json(snapshot: &Snapshot) -> Value {
    let records = snapshot.records();
    let holes = records.iter().filter(|r| reader::is_hole(r)).count();
    let live = snapshot.live.as_ref();
    json!({
        "channel": snapshot.channel.name,
        "dir": snapshot.channel.dir.display().to_string(),
        "generation": live.and_then(|l| l.generation).map(|g| g.0),
        "records": records.len(),
        "entries": records.len() - holes,
        "holes": holes,
        "first_seq": records.first().map(|r| r.seq),
        "last_seq": records.last().map(|r| r.seq),
        "next_seq": records.last().map_or(0, |r| r.seq.saturating_add(1)),
        "dat_bytes": live.and_then(|l| l.dat_len.0),
    })
}

fn ls(args: &DirArgs, out: Output) -> Result<()> {
    let channels = find_channels(&args.dir)?;
    let mut rows = Vec::new();
    for channel in channels {
        rows.push(Snapshot::read(channel)?);
    }
    let value = Value::Array(rows.iter().map(summary_json).collect());
    out.emit(&value, |out| {
        if rows.is_empty() {
            return out.line(format!("no RedEX channel under {}", args.dir.display()));
        }
        out.line(format!(
            "{:<32} {:<12} {:>9} {:>6} {:>21} {:>10}",
            "CHANNEL", "GENERATION", "ENTRIES", "HOLES", "SEQS", "DAT"
        ))?;
        for (snapshot, row) in rows.iter().zip(value.as_array().into_iter().flatten()) {
            let seqs = match (row["first_seq"].as_u64(), row["last_seq"].as_u64()) {
                (Some(a), Some(b)) => format!("{a}..={b}"),
                _ => "-".to_owned(),
            };
            out.line(format!(
                "{:<32} {:<12} {:>9} {:>6} {:>21} {:>10}",
                snapshot.channel.name,
                generation_name(snapshot),
                row["entries"].as_u64().unwrap_or(0),
                row["holes"].as_u64().unwrap_or(0),
                seqs,
                human_bytes(row["dat_bytes"].as_u64().unwrap_or(0)),
            ))?;
        }
        Ok(())
    })
}

fn stat(args: &ChannelArgs, out: Output) -> Result<()> {
    let mut all = Vec::new();
    for channel in channels_of(args)? {
        let snapshot = Snapshot::read(channel)?;
        let mut value = summary_json(&snapshot);
        let manifest = match &snapshot.manifest {
            ManifestState::Missing => json!({"state": "missing"}),
            ManifestState::Invalid(e) => json!({"state": "invalid", "error": e.to_string()}),
            ManifestState::Valid(g) => json!({"state": "valid", "generation": g.0}),
        };
        value["manifest"] = manifest;
        value["generations"] = json!(snapshot.generations.iter().map(|g| g.0).collect::<Vec<_>>());
        value["manifest_tmp"] = json!(snapshot.manifest_tmp);
        if let Some(live) = &snapshot.live {
            let inline = live
                .records
                .iter()
                .filter(|r| {
                    matches!(r.payload, net::redex::format::PayloadRef::Inline(_))
                        && !reader::is_hole(r)
                })
                .count();
            value["live"] = json!({
                "dir": live.dir.display().to_string(),
                "source": match live.source {
                    LiveSource::Manifest => "manifest",
                    LiveSource::Highest => "highest complete generation",
                    LiveSource::Legacy => "legacy flat layout",
                    LiveSource::Incomplete => "manifest (incomplete generation)",
                },
                "idx_bytes": live.idx_len.0,
                "dat_bytes": live.dat_len.0,
                "ts_bytes": live.ts_len.0,
                "inline_entries": inline,
                "timestamps": live.timestamps.len(),
                "oldest_ns": live.timestamps.iter().min(),
                "newest_ns": live.timestamps.iter().max(),
            });
        }
        all.push(value);
    }
    let value = if all.len() == 1 {
        all[0].clone()
    } else {
        Value::Array(all.clone())
    };
    out.emit(&value, |out| {
        for (i, v) in all.iter().enumerate() {
            if i > 0 {
                out.line("")?;
            }
            stat_text(out, v)?;
        }
        Ok(())
    })
}

fn stat_text(out: &Output, v: &Value) -> Result<()> {
    let opt = |v: &Value| {
        if v.is_null() {
            "-".to_owned()
        } else {
            v.to_string()
        }
    };
    let size = |v: &Value| {
        v.as_u64()
            .map_or_else(|| "missing".to_owned(), |b| format!("{b} bytes"))
    };
    out.line(format!(
        "channel     {}",
        v["channel"].as_str().unwrap_or("")
    ))?;
    out.line(format!("directory   {}", v["dir"].as_str().unwrap_or("")))?;
    let manifest = &v["manifest"];
    out.line(format!(
        "manifest    {}",
        match manifest["state"].as_str() {
            Some("valid") => format!("generation {}", manifest["generation"]),
            Some("invalid") => format!("INVALID ({})", manifest["error"].as_str().unwrap_or("")),
            _ => "missing".to_owned(),
        }
    ))?;
    out.line(format!("generations {}", v["generations"]))?;
    if let Some(live) = v.get("live") {
        out.line(format!(
            "live        {} ({})",
            live["dir"].as_str().unwrap_or(""),
            live["source"].as_str().unwrap_or("")
        ))?;
        out.line(format!("idx         {}", size(&live["idx_bytes"])))?;
        out.line(format!("dat         {}", size(&live["dat_bytes"])))?;
        out.line(format!(
            "ts          {} ({} timestamps)",
            size(&live["ts_bytes"]),
            live["timestamps"]
        ))?;
        out.line(format!(
            "entries     {} ({} inline), {} holes",
            v["entries"], live["inline_entries"], v["holes"]
        ))?;
        out.line(format!(
            "seqs        {}..={}, next {}",
            opt(&v["first_seq"]),
            opt(&v["last_seq"]),
            v["next_seq"]
        ))?;
        let time = |v: &Value| v.as_u64().map_or_else(|| "-".to_owned(), rfc3339_ns);
        out.line(format!("oldest      {}", time(&live["oldest_ns"])))?;
        out.line(format!("newest      {}", time(&live["newest_ns"])))?;
    } else {
        out.line("live        none (no entry was ever written)")?;
    }
    if v["manifest_tmp"].as_bool() == Some(true) {
        out.line("note        manifest.tmp left over by an interrupted update")?;
    }
    Ok(())
}

/// Prints one entry as text or a JSON line.
fn print_entry(
    out: Output,
    show: &ShowArgs,
    record: &IdxRecord,
    payload: &[u8],
    timestamp: Option<u64>,
) -> Result<()> {
    let inline = matches!(record.payload, net::redex::format::PayloadRef::Inline(_));
    if out.is_json() {
        let (hex, text) = payload_json(payload);
        return out.json_line(&json!({
            "seq": record.seq,
            "ts_ns": timestamp,
            "time": timestamp.map(rfc3339_ns),
            "len": payload.len(),
            "inline": inline,
            "payload_hex": hex,
            "payload_text": text,
        }));
    }
    let time = timestamp.map_or_else(|| "-".to_owned(), rfc3339_ns);
    out.line(format!(
        "{:>8}  {time:<30}  {:>7} B{}  {}",
        record.seq,
        payload.len(),
        if inline { " (inline)" } else { "" },
        show_payload(payload, show.format, show.max_bytes)
    ))
}

fn warn_damaged(channel: &Channel, record: &IdxRecord, check: &Check) {
    let why = match check {
        Check::Mismatch { .. } => "checksum mismatch",
        Check::OutOfRange { .. } => "payload past the end of dat",
        Check::Valid(_) | Check::Hole => return,
    };
    eprintln!(
        "net: warning: {} seq {}: {why}; skipped (see `net redex verify`)",
        channel.name, record.seq
    );
}

fn cat(args: &CatArgs, out: Output) -> Result<()> {
    let channel = resolve_channel(&args.target.dir, args.target.channel.as_deref())?;
    let snapshot = Snapshot::read(channel)?;
    let Some(live) = &snapshot.live else {
        return Ok(());
    };
    let dat = live.open_dat()?;
    let mut printed = 0usize;
    for (position, record) in live.records.iter().enumerate() {
        if args.from.is_some_and(|f| record.seq < f) || args.to.is_some_and(|t| record.seq > t) {
            continue;
        }
        if args.limit.is_some_and(|l| printed >= l) {
            break;
        }
        match dat.check(record)? {
            Check::Valid(payload) => {
                print_entry(out, &args.show, record, &payload, live.timestamp(position))?;
                printed += 1;
            }
            check => warn_damaged(&snapshot.channel, record, &check),
        }
    }
    Ok(())
}

fn tail(args: &TailArgs, out: Output) -> Result<()> {
    let channel = resolve_channel(&args.target.dir, args.target.channel.as_deref())?;
    let snapshot = Snapshot::read(channel.clone())?;
    let mut last_seq = None;
    if let Some(live) = &snapshot.live {
        let dat = live.open_dat()?;
        let mut shown = Vec::new();
        for (position, record) in live.records.iter().enumerate().rev() {
            if shown.len() >= args.lines {
                break;
            }
            match dat.check(record)? {
                Check::Valid(payload) => shown.push((position, record, payload)),
                check => warn_damaged(&channel, record, &check),
            }
        }
        for (position, record, payload) in shown.into_iter().rev() {
            print_entry(out, &args.show, record, &payload, live.timestamp(position))?;
        }
        last_seq = live.records.last().map(|r| r.seq);
    }
    if !args.follow {
        return Ok(());
    }
    let mut follower = Follower::new(channel.clone(), last_seq);
    // The records already printed (or skipped) come back on the first poll
    // when the follower reads the generation from its start; it skips seqs
    // up to `last_seq`.
    loop {
        for item in follower.poll()? {
            match &item.check {
                Check::Valid(payload) => {
                    print_entry(out, &args.show, &item.record, payload, item.timestamp)?;
                }
                check => warn_damaged(&channel, &item.record, check),
            }
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
}

/// A progress bar on standard error (drawn only on a terminal).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn verify_cmd(args: &ChannelArgs, out: Output) -> Result<()> {
    let mut reports = Vec::new();
    let mut errors = 0;
    for channel in channels_of(args)? {
        let snapshot = Snapshot::read(channel)?;
        let bar = progress_bar(0, &format!("verifying {}", snapshot.channel.name));
        let verdict = verify::verify(&snapshot, &bar)?;
        bar.finish_and_clear();
        errors += verdict.errors();
        if !out.is_json() {
            for finding in &verdict.findings {
                out.line(finding.to_line())?;
            }
            let state = if verdict.errors() > 0 {
                "DAMAGED"
            } else {
                "ok"
            };
            out.line(format!(
                "{}: {state}: {} records, {} entries verified, {} holes, {} errors, {} warnings",
                snapshot.channel.name,
                verdict.records,
                verdict.entries,
                verdict.holes,
                verdict.errors(),
                verdict.findings.len() - verdict.errors()
            ))?;
        }
        reports.push(json!({
            "channel": snapshot.channel.name,
            "dir": snapshot.channel.dir.display().to_string(),
            "ok": verdict.errors() == 0,
            "records": verdict.records,
            "entries": verdict.entries,
            "holes": verdict.holes,
            "findings": verdict.findings.iter().map(verify::Finding::to_json).collect::<Vec<_>>(),
        }));
    }
    if out.is_json() {
        out.json(&json!({ "ok": errors == 0, "channels": reports }))?;
    }
    if errors > 0 {
        return Err(CliError::with_code(
            format!("verify found {errors} error(s) in {}", args.dir.display()),
            EXIT_CORRUPT,
        ));
    }
    Ok(())
}

fn compact(args: &CompactArgs, out: Output) -> Result<()> {
    let channel = resolve_channel(&args.dir, args.channel.as_deref())?;
    if channel.name == "." {
        return Err(CliError::new(
            "compact needs the base directory and the channel name (DIR is a channel's own directory)",
        ));
    }
    let retention = RetentionPolicy {
        max_events: args.max_events,
        max_bytes: args.max_bytes,
        max_age: args.max_age_secs.map(Duration::from_secs),
    };
    let config = RedexFileConfig::persistent()
        .with_retention(retention)
        .with_repair(args.repair);
    let redex = Redex::with_persistent_dir(&args.dir);
    let file = redex
        .open_file(&channel.name, config)
        .context(format!("opening channel {}", channel.name))?;
    let before = file.generation();
    let report = file
        .recovery_report()
        .filter(|r| !r.is_clean())
        .map(|r| r.to_json());
    if let Some(report) = &report {
        eprintln!(
            "net: warning: recovery changed {} on open: {report}",
            channel.name
        );
    }
    let removed = if retention.is_unlimited() {
        file.compact().context("compacting")?;
        0
    } else {
        file.sweep_retention().context("applying retention")?
    };
    let after = file.generation();
    let value = json!({
        "channel": channel.name,
        "generation_before": before,
        "generation_after": after,
        "removed": removed,
        "entries": file.len(),
        "first_seq": file.first_seq(),
        "next_seq": file.next_seq(),
        "recovery": report,
    });
    file.close().context("closing the channel")?;
    out.emit(&value, |out| {
        let g = |g: Option<u32>| g.map_or_else(|| "-".to_owned(), |g| format!("v{g:010}"));
        out.line(format!(
            "{}: {} -> {}, {removed} entries removed, {} kept, next seq {}",
            channel.name,
            g(before),
            g(after),
            value["entries"],
            value["next_seq"]
        ))
    })
}
