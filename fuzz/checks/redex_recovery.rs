//! RedEX recovery over arbitrary manifest, idx, dat and ts bytes (in the
//! generation layout or the legacy flat one): opening never panics; whatever
//! it accepts reads back only checksum-valid entries in strictly increasing
//! seq order, accepts a new append, and reopens to the same entries.

use std::sync::Arc;

use net::redex::fault::FaultyStorage;
use net::redex::{Redex, RedexFileConfig};

/// Panics if `data` breaks a property above.
pub fn check(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    let layout_legacy = head[0] & 1 == 1;
    let mut cuts = [
        usize::from(head[1]),
        usize::from(head[2]) * 4,
        usize::from(head[3]),
    ];
    let mut parts = Vec::new();
    let mut rest = rest;
    for cut in &mut cuts {
        let at = (*cut).min(rest.len());
        let (part, tail) = rest.split_at(at);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    let (manifest, idx, ts, dat) = (parts[0], parts[1], parts[2], parts[3]);

    let storage = FaultyStorage::new();
    let dir = if layout_legacy {
        "/f/chan".to_owned()
    } else {
        "/f/chan/v0000000001".to_owned()
    };
    if !layout_legacy {
        storage.write_file("/f/chan/manifest", manifest).unwrap();
    }
    storage.write_file(format!("{dir}/idx"), idx).unwrap();
    storage.write_file(format!("{dir}/dat"), dat).unwrap();
    storage.write_file(format!("{dir}/ts"), ts).unwrap();

    let redex = Redex::with_storage("/f", Arc::new(storage.clone()));
    let Ok(file) = redex.open_file("chan", RedexFileConfig::persistent()) else {
        return;
    };
    let entries = file.read_range(..).unwrap();
    assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
    let seq = file.append(b"after recovery").unwrap();
    assert_eq!(seq, entries.last().map_or(0, |e| e.0 + 1));
    file.close().unwrap();
    let again = redex
        .open_file("chan", RedexFileConfig::persistent())
        .unwrap();
    let mut expected = entries;
    expected.push((seq, b"after recovery".to_vec()));
    assert_eq!(again.read_range(..).unwrap(), expected);
    again.close().unwrap();
}
