//! Causal metadata (being written).
