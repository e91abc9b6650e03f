//! Everything the command prints: text for people, JSON with `--json`, and
//! the shared formatting of payloads, hashes and times.

use std::fmt::Display;
use std::io::{self, Write};

use serde_json::Value;

use crate::error::{CliError, Result};

/// Where and how results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

fn write_failed(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::broken_pipe()
    } else {
        CliError::new(format!("writing to standard output: {e}"))
    }
}

impl Output {
    /// Text output, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one line of text.
    pub fn line(&self, text: impl Display) -> Result<()> {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .map_err(write_failed)
    }

    /// Prints one JSON document, pretty.
    pub fn json(&self, value: &Value) -> Result<()> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::new(format!("encoding JSON: {e}")))?;
        self.line(text)
    }

    /// Prints one JSON value on one line (JSON Lines, for streams).
    pub fn json_line(&self, value: &Value) -> Result<()> {
        self.line(value)
    }

    /// Prints `value` as JSON with `--json`, else runs `text`.
    pub fn emit(&self, value: &Value, text: impl FnOnce(&Self) -> Result<()>) -> Result<()> {
        if self.json {
            self.json(value)
        } else {
            text(self)
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Parses hex (an optional `0x` prefix, any case).
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// How payloads are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PayloadFormat {
    /// Text when the payload is printable UTF-8, hex otherwise.
    Auto,
    /// Always UTF-8 text (invalid bytes replaced).
    Text,
    /// Always hex.
    Hex,
}

fn is_printable(text: &str) -> bool {
    text.chars().all(|c| !c.is_control() || c == '\t')
}

/// A payload for a terminal: text or hex per `format`, cut after `max`
/// bytes with a note of how many were left out.
pub fn show_payload(payload: &[u8], format: PayloadFormat, max: usize) -> String {
    let shown = &payload[..payload.len().min(max)];
    let rest = payload.len() - shown.len();
    let as_text = match format {
        PayloadFormat::Hex => None,
        PayloadFormat::Text => Some(String::from_utf8_lossy(shown).into_owned()),
        PayloadFormat::Auto => std::str::from_utf8(shown)
            .ok()
            .filter(|t| is_printable(t))
            .map(|t| format!("{t:?}")),
    };
    let body = as_text.unwrap_or_else(|| format!("0x{}", hex(shown)));
    if rest > 0 {
        format!("{body}… (+{rest} bytes)")
    } else {
        body
    }
}

/// A payload in JSON: always hex, plus the text when it is valid UTF-8.
pub fn payload_json(payload: &[u8]) -> (Value, Value) {
    let text = std::str::from_utf8(payload)
        .map(|t| Value::String(t.to_owned()))
        .unwrap_or(Value::Null);
    (Value::String(hex(payload)), text)
}

/// UNIX nanoseconds as RFC 3339 UTC with nanoseconds.
pub fn rfc3339_ns(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    format!("{}.{nanos:09}Z", rfc3339_secs_body(secs))
}

/// UNIX seconds as RFC 3339 UTC.
pub fn rfc3339_secs(secs: u64) -> String {
    format!("{}Z", rfc3339_secs_body(secs))
}

fn rfc3339_secs_body(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The strings of a JSON array, joined with commas.
pub fn joined(array: &Value) -> String {
    let items: Vec<_> = array
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    items.join(",")
}

/// A byte count for people: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_ns(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }

    #[test]
    fn payloads_show_as_text_or_hex() {
        assert_eq!(show_payload(b"hello", PayloadFormat::Auto, 64), "\"hello\"");
        assert_eq!(show_payload(&[0, 1], PayloadFormat::Auto, 64), "0x0001");
        assert_eq!(
            show_payload(b"hello", PayloadFormat::Hex, 2),
            "0x6865… (+3 bytes)"
        );
        assert_eq!(parse_hex("0x0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
    }
}
