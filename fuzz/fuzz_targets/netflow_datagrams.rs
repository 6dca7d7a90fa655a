//! NetFlow v5/v9 and IPFIX decoding. The input is split into several
//! datagrams (a 2-byte length before each) fed to one decoder, so templates
//! learned from one datagram are used, withdrawn and redefined by the next.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_capture::netflow::{NetflowDecoder, Sampling, Session};

fuzz_target!(|data: &[u8]| {
    let sampling = if data.first().is_some_and(|b| b & 1 == 1) { Sampling::Scale } else { Sampling::AsReported };
    let mut dec = NetflowDecoder::new(sampling);
    let mut out = Vec::new();
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (dgram, tail) = rest[2..].split_at(len);
        let before = out.len();
        let n = dec.decode(Session::default(), dgram, &mut out);
        assert_eq!(out.len(), before + n, "returned count matches appended records");
        rest = tail;
    }
    for r in &out {
        let _ = format!("{r:?}");
    }
    let _ = dec.stats().skipped_total();
});
