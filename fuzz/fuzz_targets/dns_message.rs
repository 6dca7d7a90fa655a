//! DNS wire-format decoding and the record conversion of what it returns.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use osprey_capture::dns::{self, DnsRecordContext};
use osprey_segment::DnsTransport;

fuzz_target!(|data: &[u8]| {
    let _ = dns::peek_header(data);
    match dns::parse_message(data) {
        Ok(m) => {
            assert!(
                m.size as usize == data.len(),
                "size {} for {} bytes",
                m.size,
                data.len()
            );
            // A name is at most 255 wire bytes; escaped (\DDD) it can grow 4x.
            assert!(m.qname.len() <= 255 * 4, "qname of {} chars", m.qname.len());
            assert!(
                m.answers.len() <= usize::from(m.ancount),
                "more answers than ANCOUNT"
            );
            let _ = m.header();
            let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
            let rec = m.into_record(DnsRecordContext {
                ts: 1_795_478_400_000_000_000,
                client_ip: ip,
                client_port: 40000,
                server_ip: ip,
                server_port: 53,
                transport: DnsTransport::Udp,
                frame_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                latency_ns: None,
            });
            let _ = format!("{rec:?}");
        }
        Err(e) => {
            let _ = (e.to_string(), e.as_str(), e.index());
        }
    }
});
