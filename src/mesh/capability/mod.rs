//! Capability announcements (MESH2.md §3, WIRE.md §10.4): the signed
//! announcement codec, the receive pipeline's checks, the index and the
//! `find_nodes` / `find_best_node` queries. Pure: bytes and time in,
//! decisions out.
