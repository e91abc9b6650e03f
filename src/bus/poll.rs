//! Consuming: one poll merges every shard's next page in timestamp order
//! and returns the cursor to continue from.

use serde_json::Value;

use super::adapter::{Adapter, StoredEvent};
use super::cursor::CompositeCursor;
use super::error::{BusError, Result};
use super::filter::Filter;

/// The most events fetched from one shard per poll; asking for more sets
/// `truncated_at_per_shard_cap` (read that, not this constant).
#[doc(hidden)]
pub const PER_SHARD_FETCH_CAP: usize = 10_000;

/// Largest `limit` of a poll.
pub const MAX_POLL_LIMIT: usize = 100_000;

/// What to read.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRequest {
    /// Where to continue (None or "": from the beginning).
    pub cursor: Option<String>,
    /// At most this many events (1..=100 000).
    pub limit: usize,
    /// Events fetched per shard (default: `limit`; capped at 10 000).
    pub per_shard_limit: Option<usize>,
    /// Only these shards (default: the bus's shards and the cursor's).
    pub shards: Option<Vec<u16>>,
    /// Only events whose JSON payload matches.
    pub filter: Option<Filter>,
}

impl Default for PollRequest {
    fn default() -> Self {
        Self {
            cursor: None,
            limit: 1000,
            per_shard_limit: None,
            shards: None,
            filter: None,
        }
    }
}

impl PollRequest {
    /// Parses `{"cursor", "limit", "per_shard_limit", "shards", "filter"}`
    /// (all optional; unknown keys rejected).
    ///
    /// # Errors
    /// [`BusError::InvalidRequest`] naming the key.
    pub fn from_json(json: &str) -> Result<Self> {
        let bad = |why: String| BusError::InvalidRequest(why);
        let mut r = Self::default();
        if json.trim().is_empty() {
            return Ok(r);
        }
        let v: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("poll request: expected an object".into()))?;
        for (k, v) in obj {
            match k.as_str() {
                "cursor" => {
                    r.cursor = match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        _ => return Err(bad("cursor: expected a string".into())),
                    }
                }
                "limit" => {
                    r.limit = v
                        .as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| bad("limit: expected a positive integer".into()))?;
                }
                "per_shard_limit" => {
                    r.per_shard_limit = Some(
                        v.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| {
                                bad("per_shard_limit: expected a positive integer".into())
                            })?,
                    );
                }
                "shards" => {
                    let list = v
                        .as_array()
                        .ok_or_else(|| bad("shards: expected an array".into()))?;
                    r.shards = Some(
                        list.iter()
                            .map(|s| {
                                s.as_u64()
                                    .and_then(|n| u16::try_from(n).ok())
                                    .ok_or_else(|| bad(format!("shards: {s} is not a u16")))
                            })
                            .collect::<Result<_>>()?,
                    );
                }
                "filter" => r.filter = Some(Filter::parse(v)?),
                other => return Err(bad(format!("unknown key {other:?}"))),
            }
        }
        Ok(r)
    }
}

/// What a poll returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeResponse {
    /// Events, oldest first (by timestamp, then shard).
    pub events: Vec<StoredEvent>,
    /// The cursor after the last returned event (never empty).
    pub next_cursor: String,
    /// Whether more events are available right now.
    pub has_more: bool,
    /// The per-shard fetch was capped below what was asked.
    pub truncated_at_per_shard_cap: bool,
    /// Shards whose adapter reported more events but returned none.
    pub stalled_shards: Vec<u16>,
}

/// Polls `known` shards (plus the cursor's) through `adapter`.
pub(crate) async fn poll_merged(
    adapter: &dyn Adapter,
    known: &[u16],
    request: &PollRequest,
) -> Result<ConsumeResponse> {
    if request.limit == 0 || request.limit > MAX_POLL_LIMIT {
        return Err(BusError::InvalidRequest(format!(
            "limit: {} is out of range (1..={MAX_POLL_LIMIT})",
            request.limit
        )));
    }
    let mut cursor = CompositeCursor::decode(request.cursor.as_deref().unwrap_or(""))?;
    let mut shards: Vec<u16> = match &request.shards {
        Some(list) => list.clone(),
        None => known.iter().copied().chain(cursor.shards()).collect(),
    };
    shards.sort_unstable();
    shards.dedup();
    let wanted = request.per_shard_limit.unwrap_or(request.limit).max(1);
    let per_shard = wanted.min(PER_SHARD_FETCH_CAP);
    let truncated = wanted > PER_SHARD_FETCH_CAP;

    // Fetch every shard's page; keep the passing events with their shard
    // and index, and remember each shard's fetched ids in order.
    let mut pages = Vec::with_capacity(shards.len());
    let mut stalled = Vec::new();
    let mut has_more = false;
    for &shard in &shards {
        let page = adapter
            .poll_shard(shard, cursor.position(shard), per_shard)
            .await?;
        if page.has_more && page.events.is_empty() {
            stalled.push(shard);
        }
        has_more |= page.has_more;
        pages.push((shard, page.events));
    }
    let mut candidates: Vec<(u64, u16, usize)> = Vec::new();
    let mut passing: Vec<Vec<bool>> = Vec::with_capacity(pages.len());
    for (shard, events) in &pages {
        let pass: Vec<bool> = events
            .iter()
            .map(|e| {
                request
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches_payload(&e.payload))
            })
            .collect();
        for (i, e) in events.iter().enumerate() {
            if pass[i] {
                candidates.push((e.timestamp_ns, *shard, i));
            }
        }
        passing.push(pass);
    }
    candidates.sort_unstable();
    if candidates.len() > request.limit {
        has_more = true;
    }
    candidates.truncate(request.limit);
    let mut taken: Vec<Vec<bool>> = pages.iter().map(|(_, e)| vec![false; e.len()]).collect();
    let index_of = |shard: u16| shards.binary_search(&shard).unwrap_or(0);
    for &(_, shard, i) in &candidates {
        taken[index_of(shard)][i] = true;
    }
    // Advance each shard over what was returned and over filtered-out
    // events, stopping at the first passing event not returned.
    let mut out = Vec::with_capacity(candidates.len());
    let mut returned: Vec<Vec<Option<StoredEvent>>> = pages
        .into_iter()
        .map(|(_, events)| events.into_iter().map(Some).collect())
        .collect();
    for (p, &shard) in shards.iter().enumerate() {
        let mut last = None;
        for i in 0..returned[p].len() {
            if passing[p][i] && !taken[p][i] {
                break;
            }
            last = returned[p][i].as_ref().map(|e| e.id.clone());
        }
        if let Some(id) = last {
            cursor.set(shard, id);
        }
    }
    for &(_, shard, i) in &candidates {
        if let Some(e) = returned[index_of(shard)][i].take() {
            out.push(e);
        }
    }
    Ok(ConsumeResponse {
        events: out,
        next_cursor: cursor.encode()?,
        has_more,
        truncated_at_per_shard_cap: truncated,
        stalled_shards: stalled,
    })
}
