//! Proxy-log lines in every format: a record, a comment or a counted skip,
//! never a panic. The first byte picks the format; the rest is split into
//! lines fed to one parser, so `#Fields:` directives apply to later lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osprey_capture::proxylog::{ProxyFormat, ProxyLineParser};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let format = match sel % 5 {
        0 => ProxyFormat::Auto,
        1 => ProxyFormat::Spot,
        2 => ProxyFormat::Elff(None),
        3 => ProxyFormat::Squid,
        _ => ProxyFormat::Elff(Some(vec!["date".into(), "time".into(), "c-ip".into(), "cs-uri".into(), "sc-bytes".into()])),
    };
    let Ok(mut p) = ProxyLineParser::new(format) else { return };
    for line in body.split(|&b| b == b'\n') {
        if let Ok(Some(r)) = p.line(line) {
            assert!(r.fulluri.starts_with(&r.host), "fulluri {:?} host {:?}", r.fulluri, r.host);
            assert!(r.duration >= 0 && r.scbytes >= 0 && r.csbytes >= 0);
        }
    }
});
