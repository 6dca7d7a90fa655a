//! Frame decoding: the first byte selects a link type, the rest is the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_capture::packet;
use osprey_capture::pcap::LinkType;

/// Link-type numbers the decoder knows, plus two it does not.
const LINK_TYPES: [u32; 12] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 9999];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LinkType::from_u32(LINK_TYPES[usize::from(sel) % LINK_TYPES.len()]);
    // The low bit of the selector's upper half picks a wire length larger than the capture.
    let orig_len = if sel & 0x80 != 0 {
        u32::try_from(frame.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1000)
    } else {
        0
    };
    for res in [
        packet::decode(link, frame),
        packet::decode_frame(link, frame, orig_len),
    ] {
        if let Ok(m) = res {
            let _ = (m.src_ip(), m.dst_ip(), m.flow_skip());
            let r = m.payload.as_ptr_range();
            let f = frame.as_ptr_range();
            assert!(
                m.payload.is_empty() || (f.start <= r.start && r.end <= f.end),
                "payload outside the frame"
            );
            assert!(
                (m.l3_offset as usize) <= frame.len(),
                "l3 offset past the frame"
            );
            assert!(
                (m.l4_offset as usize) <= frame.len(),
                "l4 offset past the frame"
            );
        }
    }
});
