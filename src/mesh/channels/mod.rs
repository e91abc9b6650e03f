//! Publish/subscribe channels (MESH2.md §1): the per-node registry of
//! channel configs, one authorization function for subscribe and publish,
//! rosters, membership request tracking and the sweeps that evict
//! subscribers. Pure: peers, tokens and time in, decisions out.
