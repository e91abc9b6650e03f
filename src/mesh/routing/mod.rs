//! Multi-hop routing (MESH2.md §0, §2): the routing table learned from
//! pingwaves (distance vector), forwarding decisions for routed packets and
//! the bounded dedup state. Pure: pingwaves, headers and time in, decisions
//! out.
