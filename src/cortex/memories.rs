//! The memories model (STORAGE.md §11.4): dispatch 0x10–0x14 on
//! `cortex/memories`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::adapter::{Fold, FoldError};
use super::model::{
    CortexError, ModelAdapter, ModelFold, ModelQuery, ModelState, ModelWatch, decode_deleted,
    decode_event, parse_event, sealed,
};

/// The RedEX channel of the memories model.
pub const MEMORIES_CHANNEL: &str = "cortex/memories";
/// MemoryStored.
pub const MEMORY_STORED: u8 = 0x10;
/// MemoryRetagged.
pub const MEMORY_RETAGGED: u8 = 0x11;
/// MemoryPinned.
pub const MEMORY_PINNED: u8 = 0x12;
/// MemoryUnpinned.
pub const MEMORY_UNPINNED: u8 = 0x13;
/// MemoryDeleted.
pub const MEMORY_DELETED: u8 = 0x14;

/// A memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Caller-chosen id.
    pub id: u64,
    /// What is remembered.
    pub content: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Where it came from.
    pub source: String,
    /// When it was first stored (UNIX ns, as written).
    pub created_ns: u64,
    /// When it last changed.
    pub updated_ns: u64,
    /// Pinned memories are the ones to keep.
    pub pinned: bool,
}

/// The folded state: every live memory by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoriesState {
    /// Memories by id.
    pub memories: BTreeMap<u64, Memory>,
}

impl sealed::Sealed for MemoriesState {}

impl ModelState for MemoriesState {
    type Row = Memory;

    fn rows(&self) -> &BTreeMap<u64, Memory> {
        &self.memories
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    id: u64,
    content: String,
    tags: Vec<String>,
    source: String,
    now_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct Retagged {
    id: u64,
    tags: Vec<String>,
    now_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct Touched {
    id: u64,
    now_ns: u64,
}

/// The memories fold, and the memories model's kind
/// (`ModelAdapter<MemoriesFold>`).
#[derive(Debug, Default)]
pub struct MemoriesFold;

impl sealed::Sealed for MemoriesFold {}

impl ModelFold for MemoriesFold {
    type Query = MemoryQuery;
    const NAME: &'static str = "memories";
    const CHANNEL: &'static str = MEMORIES_CHANNEL;
    const DELETED: u8 = MEMORY_DELETED;
}

impl Fold for MemoriesFold {
    type State = MemoriesState;

    fn apply(&self, state: &mut MemoriesState, seq: u64, record: &[u8]) -> Result<(), FoldError> {
        let (meta, tail) = parse_event(seq, record)?;
        let memories = &mut state.memories;
        match meta.dispatch {
            MEMORY_STORED => {
                let e: Stored = decode_event(seq, meta.dispatch, tail)?;
                match memories.get_mut(&e.id) {
                    Some(m) => {
                        m.content = e.content;
                        m.tags = e.tags;
                        m.source = e.source;
                        m.updated_ns = e.now_ns;
                    }
                    None => {
                        memories.insert(
                            e.id,
                            Memory {
                                id: e.id,
                                content: e.content,
                                tags: e.tags,
                                source: e.source,
                                created_ns: e.now_ns,
                                updated_ns: e.now_ns,
                                pinned: false,
                            },
                        );
                    }
                }
            }
            MEMORY_RETAGGED => {
                let e: Retagged = decode_event(seq, meta.dispatch, tail)?;
                if let Some(m) = memories.get_mut(&e.id) {
                    m.tags = e.tags;
                    m.updated_ns = e.now_ns;
                }
            }
            MEMORY_PINNED | MEMORY_UNPINNED => {
                let e: Touched = decode_event(seq, meta.dispatch, tail)?;
                if let Some(m) = memories.get_mut(&e.id) {
                    m.pinned = meta.dispatch == MEMORY_PINNED;
                    m.updated_ns = e.now_ns;
                }
            }
            MEMORY_DELETED => {
                memories.remove(&decode_deleted(seq, meta.dispatch, tail)?);
            }
            other => tracing::debug!(
                seq,
                dispatch = other,
                "memories: ignoring a record of another dispatch"
            ),
        }
        Ok(())
    }
}

/// Sort order of a memory query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemoryOrder {
    /// By id, ascending (the default).
    #[default]
    IdAsc,
    /// By id, descending.
    IdDesc,
    /// Oldest first (ties by id).
    CreatedAsc,
    /// Newest first.
    CreatedDesc,
    /// Least recently changed first.
    UpdatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
}

/// A filter, order and page over memories. All set filters must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryQuery {
    /// Only these ids.
    pub ids: Option<Vec<u64>>,
    /// Has at least one of these tags.
    pub tags_any: Option<Vec<String>>,
    /// Has all of these tags.
    pub tags_all: Option<Vec<String>>,
    /// From exactly this source.
    pub source: Option<String>,
    /// Pinned (true) or not (false).
    pub pinned: Option<bool>,
    /// Content contains this text (case-sensitive).
    pub content_contains: Option<String>,
    /// Created at or after (UNIX ns).
    pub created_after: Option<u64>,
    /// Created before (UNIX ns).
    pub created_before: Option<u64>,
    /// Last changed at or after (UNIX ns).
    pub updated_after: Option<u64>,
    /// Last changed before (UNIX ns).
    pub updated_before: Option<u64>,
    /// Sort order (default: id ascending).
    pub order_by: Option<MemoryOrder>,
    /// Skip this many results.
    pub offset: Option<usize>,
    /// At most this many results.
    pub limit: Option<usize>,
}

impl MemoryQuery {
    /// Matches every memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only memories with at least one of `tags`.
    #[must_use]
    pub fn tags_any<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags_any = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Only memories with all of `tags`.
    #[must_use]
    pub fn tags_all<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags_all = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Only memories from `source`.
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Only pinned (or only unpinned) memories.
    #[must_use]
    pub fn pinned(mut self, pinned: bool) -> Self {
        self.pinned = Some(pinned);
        self
    }

    /// Only memories whose content contains `text`.
    #[must_use]
    pub fn content_contains(mut self, text: impl Into<String>) -> Self {
        self.content_contains = Some(text.into());
        self
    }

    /// Sort order.
    #[must_use]
    pub fn order_by(mut self, order: MemoryOrder) -> Self {
        self.order_by = Some(order);
        self
    }

    /// Skip the first `n` results.
    #[must_use]
    pub fn offset(mut self, n: usize) -> Self {
        self.offset = Some(n);
        self
    }

    /// Return at most `n` results.
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

impl sealed::Sealed for MemoryQuery {}

impl ModelQuery for MemoryQuery {
    type State = MemoriesState;

    fn matches(&self, m: &Memory) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&m.id))
            && self
                .tags_any
                .as_ref()
                .is_none_or(|tags| tags.iter().any(|t| m.tags.contains(t)))
            && self
                .tags_all
                .as_ref()
                .is_none_or(|tags| tags.iter().all(|t| m.tags.contains(t)))
            && self.source.as_ref().is_none_or(|s| &m.source == s)
            && self.pinned.is_none_or(|p| m.pinned == p)
            && self
                .content_contains
                .as_ref()
                .is_none_or(|c| m.content.contains(c.as_str()))
            && self.created_after.is_none_or(|t| m.created_ns >= t)
            && self.created_before.is_none_or(|t| m.created_ns < t)
            && self.updated_after.is_none_or(|t| m.updated_ns >= t)
            && self.updated_before.is_none_or(|t| m.updated_ns < t)
    }

    fn id_filter(&self) -> Option<&[u64]> {
        self.ids.as_deref()
    }

    fn sort_rows(&self, rows: &mut [&Memory]) {
        match self.order_by.unwrap_or_default() {
            MemoryOrder::IdAsc => rows.sort_by_key(|m| m.id),
            MemoryOrder::IdDesc => rows.sort_by_key(|m| std::cmp::Reverse(m.id)),
            MemoryOrder::CreatedAsc => rows.sort_by_key(|m| (m.created_ns, m.id)),
            MemoryOrder::CreatedDesc => {
                rows.sort_by_key(|m| std::cmp::Reverse((m.created_ns, m.id)))
            }
            MemoryOrder::UpdatedAsc => rows.sort_by_key(|m| (m.updated_ns, m.id)),
            MemoryOrder::UpdatedDesc => {
                rows.sort_by_key(|m| std::cmp::Reverse((m.updated_ns, m.id)))
            }
        }
    }

    fn page_bounds(&self) -> (Option<usize>, Option<usize>) {
        (self.offset, self.limit)
    }
}

/// The memories model over a RedEX file: the generic [`ModelAdapter`] (open,
/// restore, `delete`, queries, watches, snapshots, close) plus the memory
/// writes below.
pub type MemoriesAdapter = ModelAdapter<MemoriesFold>;

/// A live memory query.
pub type MemoriesWatch = ModelWatch<MemoriesFold>;

/// The writes particular to memories.
impl ModelAdapter<MemoriesFold> {
    /// Stores (creates or replaces content/tags/source of) memory `id`.
    ///
    /// # Errors
    /// [`CortexError::NotRunning`]; RedEX append errors.
    pub fn store(
        &self,
        id: u64,
        content: &str,
        tags: &[&str],
        source: &str,
    ) -> Result<u64, CortexError> {
        self.store_at(id, content, tags, source, crate::redex::now_ns())
    }

    /// [`store`](Self::store) with an explicit timestamp.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn store_at(
        &self,
        id: u64,
        content: &str,
        tags: &[&str],
        source: &str,
        now_ns: u64,
    ) -> Result<u64, CortexError> {
        let event = Stored {
            id,
            content: content.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            source: source.to_owned(),
            now_ns,
        };
        self.write(MEMORY_STORED, &event)
    }

    /// Replaces memory `id`'s tags.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn retag(&self, id: u64, tags: &[&str]) -> Result<u64, CortexError> {
        self.retag_at(id, tags, crate::redex::now_ns())
    }

    /// [`retag`](Self::retag) with an explicit timestamp.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn retag_at(&self, id: u64, tags: &[&str], now_ns: u64) -> Result<u64, CortexError> {
        let event = Retagged {
            id,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            now_ns,
        };
        self.write(MEMORY_RETAGGED, &event)
    }

    /// Pins memory `id`.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn pin(&self, id: u64) -> Result<u64, CortexError> {
        self.pin_at(id, crate::redex::now_ns())
    }

    /// [`pin`](Self::pin) with an explicit timestamp.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn pin_at(&self, id: u64, now_ns: u64) -> Result<u64, CortexError> {
        self.write(MEMORY_PINNED, &Touched { id, now_ns })
    }

    /// Unpins memory `id`.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn unpin(&self, id: u64) -> Result<u64, CortexError> {
        self.unpin_at(id, crate::redex::now_ns())
    }

    /// [`unpin`](Self::unpin) with an explicit timestamp.
    ///
    /// # Errors
    /// As [`store`](Self::store).
    pub fn unpin_at(&self, id: u64, now_ns: u64) -> Result<u64, CortexError> {
        self.write(MEMORY_UNPINNED, &Touched { id, now_ns })
    }
}
