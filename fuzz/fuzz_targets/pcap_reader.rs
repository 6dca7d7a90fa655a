//! `CaptureReader` on arbitrary bytes: opening and iterating never panics,
//! never loops forever, and every packet borrowed lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_capture::pcap::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(data) else {
        return;
    };
    let _ = (reader.format(), reader.link_type(), reader.snaplen());
    let range = data.as_ptr_range();
    let mut last_pos = reader.position();
    while let Some(next) = reader.next_packet() {
        match next {
            Ok(p) => {
                let r = p.data.as_ptr_range();
                assert!(
                    p.data.is_empty() || (range.start <= r.start && r.end <= range.end),
                    "packet outside the input"
                );
                // Progress: every packet consumes input (no infinite loop).
                assert!(reader.position() > last_pos, "reader did not advance");
                assert!(reader.position() <= data.len(), "position past the end");
                last_pos = reader.position();
            }
            Err(e) => {
                let _ = (e.to_string(), e.offset());
                break;
            }
        }
    }
    // Fused: nothing after the end or an error.
    assert!(reader.next_packet().is_none());
});
