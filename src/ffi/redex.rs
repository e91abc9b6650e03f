//! `net_redex_*`: the RedEX manager, files and tails.
//!
//! Appends, reads and tails move raw bytes; only the file configuration is
//! JSON. Ranges come back as one buffer of records
//! `seq (u64 LE) | len (u32 LE) | payload`, which every SDK unpacks.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::bytes::{net_bytes_t, net_slice_t};
use super::cancel::{net_cancel_t, net_error_t};
use super::error::FfiError;
use super::export::ffi_export;
use super::handle::{self, HandleInner, opaque_handle};
use super::status::net_status_t;
use super::turn::{NoTurn, Turn};
use crate::cancel::CancelToken;
use crate::redex::{
    FsyncPolicy, Redex, RedexFile, RedexFileConfig, RedexTail, RetentionPolicy, TailCloser,
    TailItem, TailPoll,
};

/// `timeout_ms` value meaning "wait as long as it takes".
pub const NET_WAIT_FOREVER: u32 = 0xFFFF_FFFF;

/// A RedEX manager: the channels under one base directory (or memory only).
#[allow(non_camel_case_types)]
pub struct net_redex_t {
    _opaque: [u8; 0],
}

/// One channel's RedEX file. Thread-safe; `net_redex_file_free` closes it.
#[allow(non_camel_case_types)]
pub struct net_redex_file_t {
    _opaque: [u8; 0],
}

/// A reader of a RedEX file. `net_redex_tail_free` wakes a blocked
/// `net_redex_tail_next`.
#[allow(non_camel_case_types)]
pub struct net_redex_tail_t {
    _opaque: [u8; 0],
}

impl HandleInner for Redex {}
opaque_handle!(net_redex_t => Redex, kind = b"NRDX");

/// Owns a file for the C side: `_free` closes the file (syncing it) and
/// returns the close's error, if any.
pub(crate) struct FileHandle(RedexFile);

impl HandleInner for FileHandle {
    fn close(self) -> Result<(), FfiError> {
        self.0.close().map_err(FfiError::from)
    }
}
opaque_handle!(net_redex_file_t => FileHandle, kind = b"NRDF");

pub(crate) struct TailHandle {
    tail: Mutex<RedexTail>,
    closer: TailCloser,
    /// One `_next` at a time; a queued one keeps its deadline and token.
    turn: Turn,
    /// Cancelled by the free: wakes calls queued for their turn.
    closing: CancelToken,
}

impl HandleInner for TailHandle {
    fn wake_blocked(&self) {
        self.closer.close();
        self.closing.cancel();
    }
}
opaque_handle!(net_redex_tail_t => TailHandle, kind = b"NRDT");

/// The JSON form of a file configuration. Every key is optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    persistent: Option<bool>,
    fsync: Option<serde_json::Value>,
    retention: Option<serde_json::Value>,
    repair: Option<bool>,
}

fn config_error(message: impl Into<String>) -> FfiError {
    FfiError::new(net_status_t::NET_ERR_REDEX_INVALID_CONFIG, message)
}

const FSYNC_FORMS: &str =
    "\"never\", {\"every_n\": N}, {\"interval_ms\": MS} or {\"interval_ms\": MS, \"max_bytes\": B}";

fn parse_fsync(value: &serde_json::Value) -> Result<FsyncPolicy, FfiError> {
    use serde_json::Value;
    let map = match value {
        Value::String(name) if name == "never" => return Ok(FsyncPolicy::Never),
        Value::Object(map) => map,
        other => {
            return Err(config_error(format!(
                "fsync: unknown policy {other} (use {FSYNC_FORMS})"
            )));
        }
    };
    if let Some(key) = map
        .keys()
        .find(|k| !["every_n", "interval_ms", "max_bytes"].contains(&k.as_str()))
    {
        return Err(config_error(format!(
            "fsync: unknown key {key:?} (use {FSYNC_FORMS})"
        )));
    }
    let number = |key: &str| -> Result<Option<u64>, FfiError> {
        map.get(key)
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    config_error(format!(
                        "fsync.{key}: expected a non-negative integer, got {v}"
                    ))
                })
            })
            .transpose()
    };
    match (
        number("every_n")?,
        number("interval_ms")?,
        number("max_bytes")?,
    ) {
        (Some(n), None, None) => Ok(FsyncPolicy::EveryN(n)),
        (None, Some(ms), None) => Ok(FsyncPolicy::Interval(Duration::from_millis(ms))),
        (None, period, Some(max_bytes)) => Ok(FsyncPolicy::IntervalOrBytes {
            period: Duration::from_millis(period.unwrap_or(0)),
            max_bytes,
        }),
        _ => Err(config_error(format!(
            "fsync: give exactly one of every_n, interval_ms, or interval_ms with max_bytes (use {FSYNC_FORMS})"
        ))),
    }
}

fn parse_retention(value: Option<&serde_json::Value>) -> Result<RetentionPolicy, FfiError> {
    let Some(value) = value else {
        return Ok(RetentionPolicy::default());
    };
    let map = value
        .as_object()
        .ok_or_else(|| config_error(format!("retention: expected an object, got {value}")))?;
    if let Some(key) = map
        .keys()
        .find(|k| !["max_events", "max_bytes", "max_age_ms"].contains(&k.as_str()))
    {
        return Err(config_error(format!(
            "retention: unknown key {key:?} (use max_events, max_bytes, max_age_ms)"
        )));
    }
    let number = |key: &str| -> Result<Option<u64>, FfiError> {
        map.get(key)
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    config_error(format!(
                        "retention.{key}: expected a non-negative integer, got {v}"
                    ))
                })
            })
            .transpose()
    };
    Ok(RetentionPolicy {
        max_events: number("max_events")?,
        max_bytes: number("max_bytes")?,
        max_age: number("max_age_ms")?.map(Duration::from_millis),
    })
}

/// Parses the configuration JSON (empty means the defaults: a memory file).
pub(crate) fn parse_config(json: &str) -> Result<RedexFileConfig, FfiError> {
    if json.trim().is_empty() {
        return Ok(RedexFileConfig::default());
    }
    let parsed: ConfigJson =
        serde_json::from_str(json).map_err(|e| config_error(format!("config JSON: {e}")))?;
    config_from(parsed)
}

/// Parses the file part of a configuration given as a JSON object.
pub(crate) fn parse_config_object(
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<RedexFileConfig, FfiError> {
    let parsed: ConfigJson = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| config_error(format!("config JSON: {e}")))?;
    config_from(parsed)
}

fn config_from(parsed: ConfigJson) -> Result<RedexFileConfig, FfiError> {
    let fsync = match parsed.fsync {
        None => FsyncPolicy::Never,
        Some(value) => parse_fsync(&value)?,
    };
    let retention = parse_retention(parsed.retention.as_ref())?;
    let config = RedexFileConfig::default()
        .with_fsync(fsync)
        .with_retention(retention);
    let config = RedexFileConfig {
        persistent: parsed.persistent.unwrap_or(false),
        repair: parsed.repair.unwrap_or(false),
        ..config
    };
    config.validate()?;
    Ok(config)
}

/// Creates a RedEX manager. With `base_dir` (UTF-8, `base_dir_len` bytes)
/// persistent files live under it; with NULL only memory files can be opened.
///
/// # Safety
/// `base_dir` is NULL (and `base_dir_len` 0) or readable for `base_dir_len`
/// bytes; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_open(
    base_dir: *const u8,
    base_dir_len: usize,
    out: *mut *mut net_redex_t,
) -> net_status_t {
    ffi_export!(opt_str base_dir[base_dir_len]; out out; {
        let redex = match base_dir {
            Some(dir) => Redex::with_persistent_dir(dir),
            None => Redex::new(),
        };
        out.write(handle::into_raw(redex));
        Ok(())
    })
}

/// Frees a manager. Files opened through it stay open until their own
/// `net_redex_file_free`. NULL-safe and idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `redex` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_free(redex: *mut net_redex_t) -> net_status_t {
    super::export::run(|| handle::free(redex))
}

/// Opens (creating or recovering) channel `name` with a JSON configuration
/// (NULL or empty: a memory file with defaults):
///
/// `{"persistent": true, "fsync": "never" | {"every_n": N} | {"interval_ms": MS}
///  | {"interval_ms": MS, "max_bytes": B}, "retention": {"max_events": N,
///  "max_bytes": B, "max_age_ms": MS}, "repair": false}`
///
/// `repair: true` lets the open rebuild a channel whose live generation lost
/// its `idx` or `dat` from what can be proven (see
/// `net_redex_file_recovery_report` for what was lost) instead of failing
/// with `NET_ERR_REDEX_CORRUPT`.
///
/// Opening a name that is already open through this manager returns another
/// handle to the same file (with the same configuration): closing either
/// closes the file for both.
///
/// Errors: `NET_ERR_CHANNEL_INVALID_NAME`, `NET_ERR_REDEX_INVALID_CONFIG`
/// (naming the key), `NET_ERR_REDEX_NO_PERSISTENT_DIR`, `NET_ERR_REDEX_LOCKED`
/// (another writer has the channel), `NET_ERR_REDEX_CORRUPT` (a file the
/// channel needs is missing; nothing was changed), `NET_ERR_REDEX_IO`.
///
/// # Safety
/// `redex` is NULL or from libnet; the strings are readable for their
/// lengths (`config_json` may be NULL with length 0); `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_open_file(
    redex: *const net_redex_t,
    name: *const u8,
    name_len: usize,
    config_json: *const u8,
    config_json_len: usize,
    out: *mut *mut net_redex_file_t,
) -> net_status_t {
    ffi_export!(handle redex; str name[name_len]; opt_str config_json[config_json_len]; out out; {
        let config = parse_config(config_json.unwrap_or(""))?;
        let file = redex.open_file(name, config)?;
        out.write(handle::into_raw(FileHandle(file)));
        Ok(())
    })
}

/// Closes (syncing whatever the policy) and frees a file. NULL-safe and
/// idempotent; waits up to 5 s for calls in flight; tails of the file end.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged), or the
/// final fsync's `NET_ERR_REDEX_IO`.
///
/// # Safety
/// `file` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_free(file: *mut net_redex_file_t) -> net_status_t {
    super::export::run(|| handle::free(file))
}

/// Appends a payload (any length, never inlined); writes its sequence number.
///
/// Errors: `NET_ERR_REDEX_CLOSED`, `NET_ERR_REDEX_POISONED`,
/// `NET_ERR_REDEX_TOO_LARGE`, `NET_ERR_REDEX_IO` (nothing appended),
/// `NET_ERR_REDEX_SYNC_FAILED` (appended, not durable; file poisoned).
///
/// # Safety
/// `file` is NULL or from libnet; `payload` is readable for `payload_len`
/// bytes; `seq_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_append(
    file: *const net_redex_file_t,
    payload: *const u8,
    payload_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle file; bytes payload[payload_len]; out seq_out; {
        seq_out.write(file.0.append(payload)?);
        Ok(())
    })
}

/// Appends exactly 8 bytes stored inside the index record.
///
/// Errors: `NET_ERR_REDEX_INLINE_LENGTH` unless 8 bytes; otherwise as
/// `net_redex_file_append`.
///
/// # Safety
/// As `net_redex_file_append`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_append_inline(
    file: *const net_redex_file_t,
    payload: *const u8,
    payload_len: usize,
    seq_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle file; bytes payload[payload_len]; out seq_out; {
        seq_out.write(file.0.append_inline(payload)?);
        Ok(())
    })
}

/// Appends `count` payloads atomically on consecutive sequence numbers.
/// `*appended_out` says whether anything was appended: an empty batch is
/// `NET_OK` with `false` (and `*first_seq_out` set to 0, meaningless), never a
/// made-up sequence number.
///
/// Errors: as `net_redex_file_append`; on error nothing of the batch is appended.
///
/// # Safety
/// `file` is NULL or from libnet; `payloads` is readable for `count` slices
/// (NULL allowed when `count` is 0); the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_append_batch(
    file: *const net_redex_file_t,
    payloads: *const net_slice_t,
    count: usize,
    first_seq_out: *mut u64,
    appended_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle file; slices payloads[count]; out first_seq_out; out appended_out; {
        let first = file.0.append_batch(&payloads)?;
        first_seq_out.write(first.unwrap_or(0));
        appended_out.write(first.is_some());
        Ok(())
    })
}

/// The payload of entry `seq`. `*found_out` is false (and the buffer empty)
/// when there is no such entry: never appended, removed by retention, or
/// dropped for a checksum mismatch.
///
/// # Safety
/// `file` is NULL or from libnet; the outputs are valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_read(
    file: *const net_redex_file_t,
    seq: u64,
    payload_out: *mut net_bytes_t,
    found_out: *mut bool,
) -> net_status_t {
    ffi_export!(handle file; out payload_out; out found_out; {
        let payload = file.0.read(seq)?;
        found_out.write(payload.is_some());
        payload_out.write(payload.map_or(net_bytes_t::EMPTY, net_bytes_t::from_vec));
        Ok(())
    })
}

/// The entries with `from_seq <= seq < to_seq`, as one buffer of records
/// `seq (u64 LE) | len (u32 LE) | payload`, in order.
///
/// # Safety
/// `file` is NULL or from libnet; `entries_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_read_range(
    file: *const net_redex_file_t,
    from_seq: u64,
    to_seq: u64,
    entries_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle file; out entries_out; {
        let entries = file.0.read_range(from_seq..to_seq)?;
        let size = entries.iter().map(|(_, p)| 12 + p.len()).sum();
        let mut buf = Vec::with_capacity(size);
        for (seq, payload) in entries {
            buf.extend_from_slice(&seq.to_le_bytes());
            let len = u32::try_from(payload.len()).map_err(|_| FfiError::new(net_status_t::NET_ERR_INTERNAL, "payload over 4 GiB"))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&payload);
        }
        entries_out.write(net_bytes_t::from_vec(buf));
        Ok(())
    })
}

/// The sequence number the next append will get (never goes backwards).
///
/// # Safety
/// `file` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_next_seq(
    file: *const net_redex_file_t,
    out: *mut u64,
) -> net_status_t {
    ffi_export!(handle file; out out; {
        out.write(file.0.next_seq());
        Ok(())
    })
}

/// What opening this persistent file found and did, as JSON: `generation`,
/// `records`, `entries`, `holes`, `dropped` (each `{position, seq,
/// stored_seq, reason}`, reason one of `checksum_mismatch`,
/// `payload_out_of_range`, `seq_out_of_range`, `seq_breaks_run`),
/// `torn_idx_bytes`, `dat_truncated_bytes`, `timestamps_restored`,
/// `index_rewritten`, `repaired`, `notes` and `clean`. A memory file gives
/// `null`. Release the result with `net_bytes_free`.
///
/// # Safety
/// `file` is NULL or from libnet; `json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_recovery_report(
    file: *const net_redex_file_t,
    json_out: *mut net_bytes_t,
) -> net_status_t {
    ffi_export!(handle file; out json_out; {
        let json = file
            .0
            .recovery_report()
            .map_or(serde_json::Value::Null, |r| r.to_json());
        json_out.write(net_bytes_t::from_vec(json.to_string().into_bytes()));
        Ok(())
    })
}

/// The number of live entries.
///
/// # Safety
/// `file` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_len(
    file: *const net_redex_file_t,
    out: *mut u64,
) -> net_status_t {
    ffi_export!(handle file; out out; {
        out.write(file.0.len());
        Ok(())
    })
}

/// Makes every append so far durable.
///
/// Errors: `NET_ERR_REDEX_CLOSED`; `NET_ERR_REDEX_IO` (the file is then poisoned).
///
/// # Safety
/// `file` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_sync(file: *const net_redex_file_t) -> net_status_t {
    ffi_export!(handle file; {
        file.0.sync()?;
        Ok(())
    })
}

/// Syncs and closes the file (idempotent); later calls on it return
/// `NET_ERR_REDEX_CLOSED` and its tails end. The handle still needs
/// `net_redex_file_free`.
///
/// # Safety
/// `file` is NULL or from libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_close(file: *const net_redex_file_t) -> net_status_t {
    ffi_export!(handle file; {
        file.0.close()?;
        Ok(())
    })
}

/// Applies the retention limits, removing the oldest entries they require
/// (compacting a persistent file so the space is freed); writes how many
/// were removed.
///
/// # Safety
/// `file` is NULL or from libnet; `removed_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_sweep_retention(
    file: *const net_redex_file_t,
    removed_out: *mut u64,
) -> net_status_t {
    ffi_export!(handle file; out removed_out; {
        removed_out.write(file.0.sweep_retention()?);
        Ok(())
    })
}

/// Starts a reader at `from_seq`: it backfills every entry from there, then
/// follows new appends.
///
/// # Safety
/// `file` is NULL or from libnet; `out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_file_tail(
    file: *const net_redex_file_t,
    from_seq: u64,
    out: *mut *mut net_redex_tail_t,
) -> net_status_t {
    ffi_export!(handle file; out out; {
        let tail = file.0.tail(from_seq);
        let closer = tail.closer();
        out.write(handle::into_raw(TailHandle {
            tail: Mutex::new(tail),
            closer,
            turn: Turn::default(),
            closing: CancelToken::new(),
        }));
        Ok(())
    })
}

/// Waits up to `timeout_ms` (`NET_WAIT_FOREVER`: no limit; 0: don't wait) for
/// the next entry.
///
/// Returns `NET_OK` with the entry; `NET_TIMEOUT`; `NET_END` when the file or
/// the tail was closed (also when the tail is freed during the call); or
/// `NET_LAGGED` when entries this reader had not yet read were removed by
/// retention: `*seq_out` is then where delivery resumes (the missed range is
/// from the previous position up to it) and the payload is empty. Outputs are
/// written for `NET_OK` and `NET_LAGGED` only. `NET_ERR_CANCELLED` when
/// `cancel` is cancelled (the tail's position is unchanged).
///
/// # Safety
/// `tail` is NULL or from libnet; the outputs are valid for one write;
/// `cancel` is NULL or from libnet; `error_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_tail_next(
    tail: *const net_redex_tail_t,
    timeout_ms: u32,
    seq_out: *mut u64,
    payload_out: *mut net_bytes_t,
    cancel: *const net_cancel_t,
    error_out: *mut net_error_t,
) -> net_status_t {
    ffi_export!(error_out error_out; handle tail; cancel cancel; out seq_out; out payload_out; {
        let deadline = (timeout_ms != NET_WAIT_FOREVER)
            .then(|| Instant::now().checked_add(Duration::from_millis(u64::from(timeout_ms))))
            .flatten();
        let turn = match tail.turn.take(deadline, &cancel.linked_with(&tail.closing)) {
            Ok(turn) => turn,
            Err(NoTurn::TimedOut) => return Ok(net_status_t::NET_TIMEOUT),
            Err(NoTurn::Cancelled) if tail.closing.is_cancelled() => return Ok(net_status_t::NET_END),
            Err(NoTurn::Cancelled) => return Err(super::cancel::cancelled()),
        };
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut reader = tail.tail.lock().unwrap_or_else(|e| e.into_inner());
        let polled = reader.next_cancellable(timeout, cancel.token());
        drop(reader);
        drop(turn);
        Ok(match polled? {
            TailPoll::Item(TailItem::Entry(entry)) => {
                seq_out.write(entry.seq);
                payload_out.write(net_bytes_t::from_vec(entry.payload));
                net_status_t::NET_OK
            }
            TailPoll::Item(TailItem::Lagged { missed_to, .. }) => {
                seq_out.write(missed_to);
                payload_out.write(net_bytes_t::EMPTY);
                net_status_t::NET_LAGGED
            }
            TailPoll::Timeout => net_status_t::NET_TIMEOUT,
            TailPoll::Cancelled => return Err(super::cancel::cancelled()),
            _ => net_status_t::NET_END,
        })
    })
}

/// Frees a tail; a `net_redex_tail_next` blocked on it returns `NET_END`
/// promptly. NULL-safe and idempotent.
///
/// Returns `NET_OK` (also for NULL or a handle already freed), or
/// `NET_ERR_BUSY` when calls on it were still running after 5 s (its
/// resources are then leaked rather than freed under them; also logged).
///
/// # Safety
/// `tail` is NULL or was returned by libnet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn net_redex_tail_free(tail: *mut net_redex_tail_t) -> net_status_t {
    super::export::run(|| handle::free(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json() {
        assert_eq!(parse_config("").unwrap(), RedexFileConfig::default());
        let c = parse_config(r#"{"persistent": true, "fsync": {"every_n": 3}, "retention": {"max_events": 5, "max_age_ms": 1000}}"#).unwrap();
        assert!(c.persistent);
        assert_eq!(c.fsync, FsyncPolicy::EveryN(3));
        assert_eq!(c.retention.max_events, Some(5));
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(1)));
        let c = parse_config(
            r#"{"persistent": true, "fsync": {"interval_ms": 10, "max_bytes": 4096}}"#,
        )
        .unwrap();
        assert_eq!(
            c.fsync,
            FsyncPolicy::IntervalOrBytes {
                period: Duration::from_millis(10),
                max_bytes: 4096
            }
        );
        assert_eq!(
            parse_config(r#"{"fsync": "never"}"#).unwrap().fsync,
            FsyncPolicy::Never
        );

        for (bad, needle) in [
            (r#"{"persistant": true}"#, "persistant"),
            (r#"{"fsync": "always"}"#, "always"),
            (
                r#"{"fsync": {"every_n": 1, "interval_ms": 5}}"#,
                "exactly one",
            ),
            (r#"{"fsync": {"evry_n": 1}}"#, "evry_n"),
            (r#"{"fsync": {"every_n": -1}}"#, "fsync.every_n"),
            (r#"{"retention": {"max_event": 1}}"#, "max_event"),
            (
                r#"{"retention": {"max_events": -1}}"#,
                "retention.max_events",
            ),
            (
                r#"{"retention": {"max_age_ms": "soon"}}"#,
                "retention.max_age_ms",
            ),
            (r#"{"retention": 5}"#, "retention"),
            (r#"{"fsync": {"every_n": 2}}"#, "persistent"),
            ("not json", "config JSON"),
        ] {
            let err = parse_config(bad).unwrap_err();
            assert_eq!(
                err.status,
                net_status_t::NET_ERR_REDEX_INVALID_CONFIG,
                "{bad}"
            );
            assert!(err.message.contains(needle), "{bad}: {}", err.message);
        }
    }
}
