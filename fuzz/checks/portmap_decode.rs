//! The `portmap_decode` check: gateway datagrams on arbitrary bytes —
//! NAT-PMP responses (RFC 6886) and PCP MAP responses (RFC 6887).
//!
//! Properties: nothing panics; a NAT-PMP success has exactly its size and
//! an error is header-only or full-size; a PCP answer is 4-aligned, within
//! 1100 bytes, version 2, and a success carries the whole MAP payload; the
//! version split is consistent (NAT-PMP refuses what PCP sees as its own
//! version and the other way round).

use net::mesh::traversal::portmap::natpmp::{self, Response};
use net::mesh::traversal::portmap::pcp;

/// Panics when `data` breaks a property above.
pub fn check(data: &[u8]) {
    match natpmp::decode_response(data) {
        Ok(Response::ExternalAddress { .. }) => {
            assert_eq!(data.len(), natpmp::EXTERNAL_ADDRESS_RESPONSE_SIZE)
        }
        Ok(Response::Map { .. }) => assert_eq!(data.len(), natpmp::MAP_RESPONSE_SIZE),
        Ok(Response::Error { .. }) => assert!(
            data.len() == natpmp::HEADER_SIZE
                || data.len() == natpmp::EXTERNAL_ADDRESS_RESPONSE_SIZE
                || data.len() == natpmp::MAP_RESPONSE_SIZE
        ),
        Ok(_) => {}
        Err(_) => {}
    }
    match pcp::decode_map_response(data) {
        Ok(r) => {
            assert_eq!(data[0], pcp::VERSION);
            assert!(data.len() <= pcp::MAX_MESSAGE && data.len().is_multiple_of(4));
            if r.result.is_none() {
                assert!(data.len() >= pcp::MAP_SIZE);
            }
            assert!(natpmp::decode_response(data).is_err());
        }
        Err(pcp::DecodeError::NatPmp) => assert_eq!(data[0], 0),
        Err(_) => {}
    }
}
