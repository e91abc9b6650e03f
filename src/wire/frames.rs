//! Event framing inside a packet payload (WIRE.md §2.3): each event is a
//! u32 LE length followed by that many bytes.

use super::error::WireError;
use super::header::{MAX_EVENTS_PER_PACKET, MAX_PAYLOAD_SIZE};

/// Bytes of framing per event.
pub const FRAME_PREFIX: usize = 4;

/// The framed size of `events`.
pub fn framed_len<E: AsRef<[u8]>>(events: &[E]) -> usize {
    events.iter().map(|e| FRAME_PREFIX + e.as_ref().len()).sum()
}

/// Frames `events` into one payload.
///
/// # Errors
/// [`WireError::BatchTooLarge`] when there are more than 2028 events or the
/// framed payload exceeds 8112 bytes (v0.11's builder silently truncated;
/// this refuses).
pub fn encode_events<E: AsRef<[u8]>>(events: &[E]) -> Result<Vec<u8>, WireError> {
    if events.len() > MAX_EVENTS_PER_PACKET {
        return Err(WireError::BatchTooLarge(format!(
            "{} events (max {MAX_EVENTS_PER_PACKET})",
            events.len()
        )));
    }
    let size = framed_len(events);
    if size > MAX_PAYLOAD_SIZE {
        return Err(WireError::BatchTooLarge(format!(
            "{size} framed bytes (max {MAX_PAYLOAD_SIZE})"
        )));
    }
    let mut out = Vec::with_capacity(size);
    for event in events {
        let event = event.as_ref();
        out.extend_from_slice(&(event.len() as u32).to_le_bytes());
        out.extend_from_slice(event);
    }
    Ok(out)
}

/// Reads up to `event_count` frames. Like the reference, a frame whose
/// prefix or body runs past the buffer ends decoding early (the remainder is
/// dropped); the frames before it are returned.
pub fn decode_events(payload: &[u8], event_count: usize) -> Vec<&[u8]> {
    let mut events = Vec::with_capacity(event_count.min(MAX_EVENTS_PER_PACKET));
    let mut rest = payload;
    for _ in 0..event_count.min(MAX_EVENTS_PER_PACKET) {
        let Some((prefix, body)) = rest.split_first_chunk::<FRAME_PREFIX>() else {
            break;
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        let Some((event, tail)) = body.split_at_checked(len) else {
            break;
        };
        events.push(event);
        rest = tail;
    }
    events
}

/// Splits `events` into consecutive batches that each fit one packet, in order.
///
/// # Errors
/// [`WireError::BatchTooLarge`] when a single event cannot fit a packet.
pub fn split_into_packets<E: AsRef<[u8]>>(
    events: &[E],
) -> Result<Vec<std::ops::Range<usize>>, WireError> {
    let mut batches = Vec::new();
    let (mut start, mut size) = (0usize, 0usize);
    for (i, event) in events.iter().enumerate() {
        let framed = FRAME_PREFIX + event.as_ref().len();
        if framed > MAX_PAYLOAD_SIZE {
            return Err(WireError::BatchTooLarge(format!(
                "one event of {} bytes",
                event.as_ref().len()
            )));
        }
        if size + framed > MAX_PAYLOAD_SIZE || i - start == MAX_EVENTS_PER_PACKET {
            batches.push(start..i);
            start = i;
            size = 0;
        }
        size += framed;
    }
    if start < events.len() {
        batches.push(start..events.len());
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_early_stop() {
        let events: [&[u8]; 3] = [b"alpha", b"", b"{\"k\":1}"];
        let payload = encode_events(&events).unwrap();
        assert_eq!(payload.len(), framed_len(&events));
        assert_eq!(decode_events(&payload, 3), events.to_vec());
        assert_eq!(decode_events(&payload, 2), events[..2].to_vec());
        // A truncated last frame is dropped, earlier ones kept.
        assert_eq!(
            decode_events(&payload[..payload.len() - 1], 3),
            events[..2].to_vec()
        );
        assert!(decode_events(&[1, 0, 0], 5).is_empty());
    }

    #[test]
    fn limits_are_refused_not_truncated() {
        assert!(encode_events(&vec![&b""[..]; 2029]).is_err());
        assert!(encode_events(&vec![&b""[..]; 2028]).is_ok());
        assert!(encode_events(&[vec![0u8; 8108]]).is_ok());
        assert!(encode_events(&[vec![0u8; 8109]]).is_err());
    }

    #[test]
    fn splitting_respects_both_limits() {
        let small = vec![vec![0u8; 0]; 5000];
        let batches = split_into_packets(&small).unwrap();
        assert_eq!(batches, vec![0..2028, 2028..4056, 4056..5000]);
        let big = vec![vec![0u8; 4000]; 5];
        let batches = split_into_packets(&big).unwrap();
        assert_eq!(batches, vec![0..2, 2..4, 4..5]);
        assert!(split_into_packets(&[vec![0u8; 9000]]).is_err());
    }
}
