//! Unit tests with hand-built messages. Offsets in comments are message
//! offsets; the question name always starts at 12.

use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

// ---- a tiny message builder -------------------------------------------------

/// Wire form of a dotted name without escapes ("" is the root).
fn wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

fn wire_labels(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

fn ptr(off: u16) -> Vec<u8> {
    (0xc000 | off).to_be_bytes().to_vec()
}

fn header(flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut h = vec![0x12, 0x34];
    for w in [flags, qd, an, ns, ar] {
        h.extend_from_slice(&w.to_be_bytes());
    }
    h
}

/// Appends one RR: owner (wire bytes), type, class IN, TTL 300, RDATA.
fn rr(msg: &mut Vec<u8>, owner: &[u8], rtype: u16, rdata: &[u8]) {
    msg.extend_from_slice(owner);
    msg.extend_from_slice(&rtype.to_be_bytes());
    msg.extend_from_slice(&1u16.to_be_bytes());
    msg.extend_from_slice(&300u32.to_be_bytes());
    msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    msg.extend_from_slice(rdata);
}

/// A response to `qname`/`qtype` with one answer (owner = pointer to the qname).
fn response(qname: &str, qtype: u16, rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut m = header(0x8180, 1, 1, 0, 0);
    m.extend(wire(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    rr(&mut m, &ptr(12), rtype, rdata);
    m
}

/// The single answer of `response(.., rtype, rdata)`.
fn answer(rtype: u16, rdata: &[u8]) -> DnsAnswer {
    let m = parse_message(&response("example.com", rtype, rtype, rdata)).expect("parses");
    assert!(!m.answers_truncated, "{m:?}");
    assert_eq!(m.answers.len(), 1);
    m.answers.into_iter().next().expect("one answer")
}

fn data(rtype: u16, rdata: &[u8]) -> String {
    answer(rtype, rdata).data
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---- header and question ------------------------------------------------------

#[test]
fn simple_a_response() {
    let m = parse_message(&response("www.example.com", 1, 1, &[93, 184, 216, 34])).expect("parses");
    assert_eq!(m.id, 0x1234);
    assert_eq!(m.flags, 0x8180);
    assert!(m.is_response);
    assert_eq!((m.opcode, m.rcode), (0, 0));
    assert_eq!((m.qdcount, m.ancount, m.nscount, m.arcount), (1, 1, 0, 0));
    assert_eq!(
        (m.qname.as_str(), m.qtype, m.qclass),
        ("www.example.com", 1, 1)
    );
    assert_eq!(
        m.answers,
        vec![DnsAnswer {
            name: "www.example.com".into(),
            rtype: 1,
            rclass: 1,
            ttl: 300,
            ip: Some(IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))),
            target: None,
            data: "93.184.216.34".into(),
        }]
    );
    assert!(!m.answers_truncated);
    assert_eq!(m.answers_error, None);
    assert_eq!(m.edns, None);
    assert_eq!(
        m.size as usize,
        response("www.example.com", 1, 1, &[93, 184, 216, 34]).len()
    );
}

#[test]
fn simple_aaaa_response() {
    let ip: Ipv6Addr = "2001:db8::1".parse().expect("literal");
    let a = answer(28, &ip.octets());
    assert_eq!(a.ip, Some(IpAddr::V6(ip)));
    assert_eq!(a.data, "2001:db8::1");
    assert_eq!(a.target, None);
}

#[test]
fn header_fields_and_peek() {
    // Query, opcode 5 (UPDATE), RD, rcode 3 (odd for a query, but decoded as is).
    let m = header(0x2903, 0, 0, 0, 0);
    let h = peek_header(&m).expect("12 bytes");
    assert!(!h.is_response());
    assert_eq!(h.opcode(), 5);
    assert_eq!(h.rcode(), 3);
    assert!(
        h.recursion_desired() && !h.truncated() && !h.authoritative() && !h.recursion_available()
    );
    assert_eq!(peek_header(&m[..11]), None);
    let full = parse_message(&m).expect("parses");
    assert_eq!(full.header(), h);
    assert_eq!((full.opcode, full.rcode, full.is_response), (5, 3, false));
}

#[test]
fn truncated_header_is_an_error() {
    for n in 0..HEADER_LEN {
        assert_eq!(
            parse_message(&vec![0; n]),
            Err(DnsError::ShortHeader { len: n })
        );
    }
}

#[test]
fn truncated_question() {
    let mut m = header(0x0100, 1, 0, 0, 0);
    m.extend(wire("example.com"));
    // No QTYPE/QCLASS at all, then only half of them.
    assert_eq!(
        parse_message(&m),
        Err(DnsError::QuestionTruncated { offset: 25 })
    );
    m.extend_from_slice(&[0, 1]);
    assert_eq!(
        parse_message(&m),
        Err(DnsError::QuestionTruncated { offset: 25 })
    );
    // The name itself cut inside a label, and before its terminating zero.
    let m = cat(&[&header(0x0100, 1, 0, 0, 0), b"\x07exam"]);
    assert_eq!(
        parse_message(&m),
        Err(DnsError::NameTruncated { offset: 12 })
    );
    let m = cat(&[&header(0x0100, 1, 0, 0, 0), b"\x07example"]);
    assert_eq!(
        parse_message(&m),
        Err(DnsError::NameTruncated { offset: 20 })
    );
    // A pointer cut after its first byte.
    let m = cat(&[&header(0x0100, 1, 0, 0, 0), b"\xc0"]);
    assert_eq!(
        parse_message(&m),
        Err(DnsError::NameTruncated { offset: 12 })
    );
}

#[test]
fn qdcount_zero_has_empty_question_but_answers() {
    let mut m = header(0x8180, 0, 1, 0, 0);
    rr(&mut m, &wire("a.example"), 1, &[10, 0, 0, 1]);
    let m = parse_message(&m).expect("parses");
    assert_eq!((m.qname.as_str(), m.qtype, m.qclass), ("", 0, 0));
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].name, "a.example");
}

#[test]
fn qdcount_two_reports_first_and_skips_second() {
    let mut m = header(0x8180, 2, 1, 0, 0);
    m.extend(wire("first.example"));
    m.extend_from_slice(&[0, 28, 0, 1]);
    // Second question compressed onto the first.
    m.extend(cat(&[b"\x06second", &ptr(12)]));
    m.extend_from_slice(&[0, 1, 0, 1]);
    rr(&mut m, &ptr(12), 1, &[10, 0, 0, 2]);
    let m = parse_message(&m).expect("parses");
    assert_eq!((m.qname.as_str(), m.qtype), ("first.example", 28));
    assert_eq!(
        m.answers[0].ip,
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))
    );
    assert!(!m.answers_truncated);
}

#[test]
fn truncated_later_question_only_loses_answers() {
    let mut m = header(0x8180, 2, 1, 0, 0);
    m.extend(wire("first.example"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(b"\x05sec");
    let m = parse_message(&m).expect("first question decodes");
    assert_eq!(m.qname, "first.example");
    assert!(m.answers.is_empty() && m.answers_truncated);
    assert_eq!(
        m.answers_error,
        Some(DnsError::NameTruncated { offset: 31 })
    );
}

// ---- names --------------------------------------------------------------------

#[test]
fn root_name() {
    // A priming query: QNAME is just the zero label.
    let mut m = header(0x0000, 1, 0, 0, 0);
    m.extend(wire(""));
    m.extend_from_slice(&[0, 2, 0, 1]);
    let m = parse_message(&m).expect("parses");
    assert_eq!((m.qname.as_str(), m.qtype), (".", 2));
    // A zero-length label ends the name: bytes after it are not part of it
    // (here they are read as QTYPE/QCLASS).
    let mut m = header(0x0000, 1, 0, 0, 0);
    m.extend_from_slice(b"\x01a\x00\x01b\x00\x00");
    let m = parse_message(&m).expect("parses");
    assert_eq!((m.qname.as_str(), m.qtype, m.qclass), ("a", 0x0162, 0x0000));
}

#[test]
fn compression_backward_forward_and_pointer_to_pointer() {
    // 12: www.example.com  (example.com at 16)
    let mut m = header(0x8180, 1, 3, 0, 0);
    m.extend(wire("www.example.com"));
    m.extend_from_slice(&[0, 5, 0, 1]);
    // Answer 1 at 33: owner = pointer to 12; CNAME target "cdn" + pointer to 16.
    rr(&mut m, &ptr(12), 5, &cat(&[b"\x03cdn", &ptr(16)]));
    // Answer 2 at 33+12+6=51: owner = pointer to the pointer at 33 (pointer to pointer).
    assert_eq!(m.len(), 51);
    rr(&mut m, &ptr(33), 1, &[1, 2, 3, 4]);
    // Answer 3: owner = pointer forward to a name placed after it (inside its own RDATA).
    let a3 = m.len();
    let fwd = (a3 + 2 + 10) as u16;
    rr(&mut m, &ptr(fwd), 5, &wire("fwd.example"));
    let m = parse_message(&m).expect("parses");
    assert!(!m.answers_truncated, "{m:?}");
    assert_eq!(m.answers[0].name, "www.example.com");
    assert_eq!(m.answers[0].target.as_deref(), Some("cdn.example.com"));
    assert_eq!(m.answers[0].data, "cdn.example.com");
    assert_eq!(m.answers[1].name, "www.example.com");
    assert_eq!(m.answers[2].name, "fwd.example");
    assert_eq!(m.answers[2].target.as_deref(), Some("fwd.example"));
}

#[test]
fn pointer_loops_are_errors() {
    // Self loop.
    let m = cat(&[&header(0, 1, 0, 0, 0), &ptr(12), &[0, 1, 0, 1]]);
    assert_eq!(parse_message(&m), Err(DnsError::PointerLoop { offset: 12 }));
    // Two-step loop through a label: 12: "a" -> 16, 16: "b" -> 12.
    let m = cat(&[
        &header(0, 1, 0, 0, 0),
        b"\x01a",
        &ptr(16),
        b"\x01b",
        &ptr(12),
    ]);
    let e = parse_message(&m).expect_err("loops");
    // The labels grow the name on every lap, so the length bound may hit first.
    assert!(
        matches!(
            e,
            DnsError::PointerLoop { .. } | DnsError::NameTooLong { .. }
        ),
        "{e:?}"
    );
    // Pure pointer ping-pong: 12 -> 14 -> 12.
    let m = cat(&[&header(0, 1, 0, 0, 0), &ptr(14), &ptr(12)]);
    assert_eq!(parse_message(&m), Err(DnsError::PointerLoop { offset: 12 }));
}

#[test]
fn pointer_past_end_is_an_error() {
    let m = cat(&[&header(0, 1, 0, 0, 0), &ptr(0x3fff), &[0, 1, 0, 1]]);
    assert_eq!(
        parse_message(&m),
        Err(DnsError::PointerOutOfRange {
            offset: 12,
            target: 0x3fff
        })
    );
    // Pointing exactly at the end.
    let m = cat(&[&header(0, 1, 0, 0, 0), &ptr(14)]);
    assert_eq!(
        parse_message(&m),
        Err(DnsError::PointerOutOfRange {
            offset: 12,
            target: 14
        })
    );
}

#[test]
fn name_length_bound_is_255_wire_bytes() {
    let l63 = [b'a'; 63];
    let l61 = [b'b'; 61];
    // 4 × 63-byte labels = 256 wire bytes (+1 root) -> too long.
    let long = wire_labels(&[&l63, &l63, &l63, &l63]);
    assert_eq!(long.len(), 257);
    let m = cat(&[&header(0, 1, 0, 0, 0), &long, &[0, 1, 0, 1]]);
    assert_eq!(parse_message(&m), Err(DnsError::NameTooLong { offset: 12 }));
    // 3 × 63 + 61 = 255 exactly -> fine, and 63-byte labels are fine.
    let max = wire_labels(&[&l63, &l63, &l63, &l61]);
    assert_eq!(max.len(), 255);
    let m = parse_message(&cat(&[&header(0, 1, 0, 0, 0), &max, &[0, 1, 0, 1]]))
        .expect("255 is allowed");
    assert_eq!(m.qname.len(), 63 * 3 + 61 + 3);
    assert!(m.qname.starts_with(&"a".repeat(63)));
    // Too long only through compression: 3 × 63 in place, then a pointer to them again.
    let m = cat(&[
        &header(0, 1, 0, 0, 0),
        &[63],
        &l63,
        &[63],
        &l63,
        &[63],
        &l63,
        &ptr(12),
    ]);
    assert_eq!(parse_message(&m), Err(DnsError::NameTooLong { offset: 12 }));
}

#[test]
fn reserved_label_types_are_errors() {
    for byte in [0x40u8, 0x41, 0x7f, 0x80, 0xbf] {
        let m = cat(&[&header(0, 1, 0, 0, 0), &[byte, b'a', 0], &[0, 1, 0, 1]]);
        assert_eq!(
            parse_message(&m),
            Err(DnsError::BadLabelType { offset: 12, byte })
        );
    }
}

#[test]
fn label_escaping() {
    let m = cat(&[
        &header(0, 1, 0, 0, 0),
        &wire_labels(&[
            b"a.b",
            b"sp ace",
            b"back\\slash",
            b"\x00\x07\x1f\x7f\x80\xff",
            b"\"q(;)@$",
            b"Mixed-Case_1",
        ]),
        &[0, 1, 0, 1],
    ]);
    let m = parse_message(&m).expect("parses");
    assert_eq!(
        m.qname,
        r#"a\.b.sp\032ace.back\\slash.\000\007\031\127\128\255."q(;)@$.Mixed-Case_1"#
    );
}

// ---- resource records and sections -------------------------------------------

#[test]
fn truncated_rr_keeps_earlier_answers() {
    let full = {
        let mut m = header(0x8180, 1, 2, 0, 0);
        m.extend(wire("example.com"));
        m.extend_from_slice(&[0, 1, 0, 1]);
        rr(&mut m, &ptr(12), 1, &[1, 1, 1, 1]);
        rr(&mut m, &ptr(12), 1, &[2, 2, 2, 2]);
        m
    };
    // Cut inside the second RR's fixed fields.
    let cut = &full[..full.len() - 8];
    let m = parse_message(cut).expect("parses");
    assert_eq!(m.answers.len(), 1);
    assert!(m.answers_truncated);
    assert_eq!(
        m.answers_error,
        Some(DnsError::RecordTruncated {
            offset: full.len() - 14
        })
    );
    // Cut inside the second RR's RDATA: RDLENGTH reaches past the end.
    let cut = &full[..full.len() - 1];
    let m = parse_message(cut).expect("parses");
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        m.answers_error,
        Some(DnsError::RdataOverrun {
            offset: full.len() - 4,
            rdlength: 4
        })
    );
    // Cut inside the second RR's owner name.
    let m = parse_message(&full[..full.len() - 15]).expect("parses");
    assert_eq!(m.answers.len(), 1);
    assert!(matches!(
        m.answers_error,
        Some(DnsError::NameTruncated { .. })
    ));
}

#[test]
fn rdlength_beyond_end_stops_answers() {
    let mut m = response("example.com", 1, 1, &[1, 2, 3, 4]);
    let rdlen_at = m.len() - 6;
    m[rdlen_at..rdlen_at + 2].copy_from_slice(&200u16.to_be_bytes());
    let m = parse_message(&m).expect("parses");
    assert!(m.answers.is_empty());
    assert!(m.answers_truncated);
    assert!(matches!(
        m.answers_error,
        Some(DnsError::RdataOverrun { rdlength: 200, .. })
    ));
}

#[test]
fn huge_ancount_does_not_preallocate() {
    // 65535 announced answers in a 29-byte message: nothing decoded, no big allocation.
    let mut m = header(0x8180, 1, 0xffff, 0xffff, 0xffff);
    m.extend(wire("example.com"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    let m = parse_message(&m).expect("parses");
    assert!(m.answers_truncated);
    assert_eq!(m.answers.capacity(), 0);
}

#[test]
fn answer_limits_stop_decoding() {
    let mut m = header(0x8180, 1, 5, 0, 0);
    m.extend(wire("example.com"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    for i in 0..5 {
        rr(&mut m, &ptr(12), 1, &[10, 0, 0, i]);
    }
    let limits = ParseLimits {
        max_answers: 3,
        ..ParseLimits::DEFAULT
    };
    let p = parse_message_with(&m, &limits).expect("parses");
    assert_eq!(p.answers.len(), 3);
    assert_eq!(p.answers_error, Some(DnsError::LimitReached));
    let limits = ParseLimits {
        max_answers: 100,
        text_per_wire_byte: 0,
        text_slack: 10,
    };
    let p = parse_message_with(&m, &limits).expect("parses");
    // The first answer alone is 20 bytes of text, over the 10-byte budget.
    assert_eq!(p.answers.len(), 1);
    assert!(p.answers_truncated);
}

#[test]
fn worst_case_expansion_is_bounded() {
    // A 253-byte name of 0xff bytes (each printed as \255) and as many RRs as
    // fit in 64 KiB, each just a 2-byte pointer owner + empty CNAME-less RDATA.
    let mut m = header(0x8180, 1, 0xffff, 0, 0);
    let l = [0xffu8; 63];
    m.extend(wire_labels(&[&l, &l, &l, &[0xff; 61]]));
    m.extend_from_slice(&[0, 1, 0, 1]);
    while m.len() + 12 <= 65535 {
        rr(&mut m, &ptr(12), 99, &[]);
    }
    let start = Instant::now();
    let p = parse_message(&m).expect("parses");
    let text: usize = p.answers.iter().map(|a| a.name.len() + a.data.len()).sum();
    assert!(p.answers_truncated);
    assert!(text <= 16 * m.len() + 4096 + 2000, "{text}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn edns_opt_in_additional_section() {
    let mut m = response("example.com", 1, 1, &[1, 2, 3, 4]);
    m[11] = 1; // ARCOUNT = 1
    m[3] = 0x80; // rcode 0 in the header ...
    // OPT: root owner, type 41, class = 1232, TTL = ext-rcode 1 (→ BADVERS 16), version 0, DO.
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&1232u16.to_be_bytes());
    m.extend_from_slice(&[1, 0, 0x80, 0]);
    let opts = [0u8, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]; // COOKIE option
    m.extend_from_slice(&(opts.len() as u16).to_be_bytes());
    m.extend_from_slice(&opts);
    let p = parse_message(&m).expect("parses");
    let e = p.edns.expect("OPT found");
    assert_eq!(e.udp_payload_size, 1232);
    assert_eq!((e.extended_rcode, e.version), (1, 0));
    assert!(e.dnssec_ok());
    assert_eq!(e.options_len, 12);
    assert_eq!(e.full_rcode(p.rcode), 16);
    assert_eq!(p.answers.len(), 1);
}

#[test]
fn edns_after_authority_section() {
    let mut m = header(0x8183, 1, 0, 1, 1);
    m.extend(wire("nx.example"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    let soa = cat(&[&wire("ns.example"), &wire("host.example"), &[0; 20]]);
    rr(&mut m, &ptr(15), 6, &soa);
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    let p = parse_message(&m).expect("parses");
    assert_eq!(p.rcode, 3);
    assert_eq!(p.edns.map(|e| e.udp_payload_size), Some(4096));
}

// ---- typed RDATA ------------------------------------------------------------------

#[test]
fn single_name_types() {
    let target = wire("target.example");
    for t in [2u16, 3, 4, 5, 7, 8, 9, 12, 39] {
        let a = answer(t, &target);
        assert_eq!(a.target.as_deref(), Some("target.example"), "type {t}");
        assert_eq!(a.data, "target.example", "type {t}");
        assert_eq!(a.ip, None);
    }
    // A compressed target pointing back into the question.
    let a = answer(5, &cat(&[b"\x03www", &ptr(12)]));
    assert_eq!(a.target.as_deref(), Some("www.example.com"));
}

#[test]
fn preference_and_host_types() {
    let rdata = cat(&[&10u16.to_be_bytes(), &wire("mail.example")]);
    for t in [15u16, 18, 21, 36] {
        let a = answer(t, &rdata);
        assert_eq!(a.data, "10 mail.example", "type {t}");
        assert_eq!(a.target.as_deref(), Some("mail.example"));
    }
    let srv = cat(&[
        &1u16.to_be_bytes(),
        &5u16.to_be_bytes(),
        &5060u16.to_be_bytes(),
        &wire("sip.example"),
    ]);
    let a = answer(33, &srv);
    assert_eq!(a.data, "1 5 5060 sip.example");
    assert_eq!(a.target.as_deref(), Some("sip.example"));
    // SRV "no service" target is the root.
    let a = answer(33, &cat(&[&[0, 0, 0, 0, 0, 0], &wire("")]));
    assert_eq!(a.data, "0 0 0 .");
}

#[test]
fn soa() {
    let rdata = cat(&[
        &wire("ns1.example"),
        &wire("host\\.master.example"),
        &2024010101u32.to_be_bytes(),
        &7200u32.to_be_bytes(),
        &3600u32.to_be_bytes(),
        &1209600u32.to_be_bytes(),
        &300u32.to_be_bytes(),
    ]);
    let a = answer(6, &rdata);
    assert_eq!(
        a.data,
        r"ns1.example host\\.master.example 2024010101 7200 3600 1209600 300"
    );
    assert_eq!(a.target, None);
    // An RNAME whose first label contains a real dot is escaped.
    let rdata = cat(&[
        &wire("ns1"),
        &wire_labels(&[b"john.doe", b"example"]),
        &[0; 20],
    ]);
    assert_eq!(data(6, &rdata), r"ns1 john\.doe.example 0 0 0 0 0");
    // Missing the last counter -> generic form.
    assert!(data(6, &rdata[..rdata.len() - 1]).starts_with("\\# 42 "));
}

#[test]
fn txt_and_spf() {
    assert_eq!(
        data(16, b"\x05hello\x00\x0bsay \"hi\" \\o"),
        r#""hello" "" "say \"hi\" \\o""#
    );
    assert_eq!(data(16, b"\x03a\x01\xff"), r#""a\001\255""#);
    assert_eq!(data(99, b"\x0ev=spf1 -all ok"), r#""v=spf1 -all ok""#);
    // Empty RDATA (no character-string at all) and a string running past RDLENGTH.
    assert_eq!(data(16, b""), r"\# 0");
    assert_eq!(data(16, b"\x05abc"), r"\# 4 05616263");
}

#[test]
fn hinfo_minfo_rp() {
    assert_eq!(data(13, b"\x07INTEL64\x05LINUX"), r#""INTEL64" "LINUX""#);
    assert_eq!(data(13, b"\x07INTEL64"), r"\# 8 07494E54454C3634");
    let two = cat(&[&wire("admin.example"), &wire("errors.example")]);
    assert_eq!(data(14, &two), "admin.example errors.example");
    assert_eq!(data(17, &two), "admin.example errors.example");
}

#[test]
fn caa() {
    assert_eq!(
        data(257, b"\x00\x05issueletsencrypt.org"),
        r#"0 issue "letsencrypt.org""#
    );
    assert_eq!(data(257, b"\x80\x05iodef"), r#"128 iodef """#);
    // A tag with a non-alphanumeric byte is malformed.
    assert_eq!(data(257, b"\x00\x02a-x"), r"\# 5 0002612D78");
}

#[test]
fn sshfp_ds_tlsa() {
    assert_eq!(data(44, &[1, 2, 0xab, 0xcd, 0x01]), "1 2 ABCD01");
    assert_eq!(data(44, &[1, 2]), r"\# 2 0102");
    assert_eq!(
        data(43, &[0x30, 0x39, 8, 2, 0xde, 0xad, 0xbe, 0xef]),
        "12345 8 2 DEADBEEF"
    );
    assert_eq!(data(59, &[0, 1, 13, 2, 0x00]), "1 13 2 00");
    assert_eq!(data(52, &[3, 1, 1, 0x12, 0x34]), "3 1 1 1234");
}

#[test]
fn dnskey_rrsig_nsec() {
    assert_eq!(
        data(48, &[1, 1, 3, 8, b'f', b'o', b'o', b'b']),
        "257 3 8 Zm9vYg=="
    );
    let rrsig = cat(&[
        &1u16.to_be_bytes(),           // covers A
        &[8, 2],                       // alg 8, 2 labels
        &3600u32.to_be_bytes(),        // original TTL
        &951_827_696u32.to_be_bytes(), // 2000-02-29 12:34:56
        &0u32.to_be_bytes(),           // 1970-01-01
        &4660u16.to_be_bytes(),        // key tag
        &wire("example.com"),
        b"foobar",
    ]);
    assert_eq!(
        data(46, &rrsig),
        "A 8 2 3600 20000229123456 19700101000000 4660 example.com Zm9vYmFy"
    );
    // NSEC: next name + bitmap {A, NS, SOA, MX, TXT, AAAA, RRSIG, NSEC, DNSKEY} and type 1234 (window 4).
    let nsec = cat(&[
        &wire("host.example.com"),
        &[0, 7, 0x62, 0x01, 0x80, 0x08, 0x00, 0x03, 0x80],
        &[4, 27, 0],
        &[0; 25],
        &[0x20],
    ]);
    assert_eq!(
        data(47, &nsec),
        "host.example.com A NS SOA MX TXT AAAA RRSIG NSEC DNSKEY TYPE1234"
    );
    // Bitmap window with a zero length is malformed.
    let bad = cat(&[&wire("n.example"), &[0, 0]]);
    assert!(data(47, &bad).starts_with(r"\# 13 "));
    // NSEC3: alg 1, flags 1, 10 iterations, salt AABBCCDD, 5-byte hash "foo ba", types A RRSIG.
    let nsec3 = cat(&[
        &[1, 1, 0, 10, 4, 0xaa, 0xbb, 0xcc, 0xdd, 5],
        b"fooba",
        &[0, 6, 0x40, 0, 0, 0, 0, 0x02],
    ]);
    assert_eq!(data(50, &nsec3), "1 1 10 AABBCCDD CPNMUOJ1 A RRSIG");
    assert_eq!(data(51, &[1, 0, 0, 0, 0]), "1 0 0 -");
}

#[test]
fn loc() {
    // RFC 1876 example: 42 21 54.000 N 71 06 18.000 W -24m 30m (size 1m, hp 10000m, vp 10m).
    let lat = (1u32 << 31) + ((42 * 3600 + 21 * 60 + 54) * 1000);
    let lon = (1u32 << 31) - ((71 * 3600 + 6 * 60 + 18) * 1000);
    let alt = 10_000_000u32 - 2400;
    let rdata = cat(&[
        &[0, 0x12, 0x16, 0x13],
        &lat.to_be_bytes(),
        &lon.to_be_bytes(),
        &alt.to_be_bytes(),
    ]);
    assert_eq!(
        data(29, &rdata),
        "42 21 54.000 N 71 6 18.000 W -24.00m 1m 10000m 10m"
    );
    // Truncated LOC (as in zeek's loc-29-trunc capture) -> generic.
    assert_eq!(
        data(29, &rdata[..15]),
        format!(r"\# 15 {}", hex(&rdata[..15]))
    );
    // Version 1 is unknown -> generic.
    let mut v1 = rdata.clone();
    v1[0] = 1;
    assert!(data(29, &v1).starts_with(r"\# 16 01"));
}

#[test]
fn naptr_uri_eui_svcb() {
    let naptr = cat(&[
        &[0, 100, 0, 10],
        b"\x01U",
        b"\x07E2U+sip",
        b"\x0c!^.*$!sip:x!",
        &wire(""),
    ]);
    assert_eq!(data(35, &naptr), r#"100 10 "U" "E2U+sip" "!^.*$!sip:x!" ."#);
    assert_eq!(data(256, b"\x00\x0a\x00\x01ftp://x/"), r#"10 1 "ftp://x/""#);
    assert_eq!(
        data(108, &[0, 0x11, 0x22, 0x33, 0x44, 0xaa]),
        "00-11-22-33-44-aa"
    );
    // HTTPS: priority 1, target ".", alpn h2,h3, port 443, ipv4hint, ipv6hint, key667="x".
    let https = cat(&[
        &[0, 1, 0],
        &[0, 1, 0, 6, 2, b'h', b'2', 2, b'h', b'3'],
        &[0, 3, 0, 2, 1, 0xbb],
        &[0, 4, 0, 8, 192, 0, 2, 1, 192, 0, 2, 2],
        &[0, 6, 0, 16],
        &"2001:db8::1".parse::<Ipv6Addr>().expect("literal").octets(),
        &[2, 0x9b, 0, 1, b'x'],
    ]);
    let a = answer(65, &https);
    assert_eq!(
        a.data,
        r#"1 . alpn="h2,h3" port=443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 key667="x""#
    );
    assert_eq!(a.target.as_deref(), Some("."));
    // Alias mode SVCB with a target, no params.
    let a = answer(64, &cat(&[&[0, 0], &wire("svc.example")]));
    assert_eq!(
        (a.data.as_str(), a.target.as_deref()),
        ("0 svc.example", Some("svc.example"))
    );
    // Keys out of order -> generic.
    let bad = cat(&[
        &[0, 1, 0],
        &[0, 3, 0, 2, 1, 0xbb],
        &[0, 1, 0, 3, 2, b'h', b'2'],
    ]);
    assert!(data(65, &bad).starts_with(r"\# 16 "));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[test]
fn generic_and_malformed_rdata() {
    // NULL (iodine's carrier), OPT in the answer section, an unknown type, WKS.
    assert_eq!(data(10, b"\x00\xffhi"), r"\# 4 00FF6869");
    assert_eq!(data(41, &[0, 10, 0, 0]), r"\# 4 000A0000");
    assert_eq!(data(65280, &[]), r"\# 0");
    assert_eq!(data(11, &[1, 2, 3, 4, 6, 0]), r"\# 6 010203040600");
    // Known types with the wrong length: A with 5 bytes, AAAA with 4, CNAME with trailing junk.
    let a = answer(1, &[1, 2, 3, 4, 5]);
    assert_eq!((a.data.as_str(), a.ip), (r"\# 5 0102030405", None));
    assert_eq!(data(28, &[1, 2, 3, 4]), r"\# 4 01020304");
    let a = answer(5, &cat(&[&wire("x.example"), b"junk"]));
    assert_eq!(
        (a.data.as_str(), a.target),
        (r"\# 15 0178076578616D706C65006A756E6B", None)
    );
    // A CNAME whose target loops -> generic, and decoding continues.
    let mut m = response("example.com", 5, 5, &ptr(41));
    m[7] = 2;
    rr(&mut m, &ptr(12), 1, &[9, 9, 9, 9]);
    let p = parse_message(&m).expect("parses");
    assert_eq!(p.answers[0].data, r"\# 2 C029");
    assert_eq!(p.answers[1].data, "9.9.9.9");
    assert!(!p.answers_truncated);
}

#[test]
fn owner_class_and_ttl_kept_raw() {
    // mDNS cache-flush bit in the class, TTL with the top bit set.
    let mut m = response("example.com", 1, 1, &[1, 2, 3, 4]);
    let n = m.len();
    m[n - 12..n - 10].copy_from_slice(&0x8001u16.to_be_bytes());
    m[n - 10..n - 6].copy_from_slice(&0x8000_0001u32.to_be_bytes());
    let a = &parse_message(&m).expect("parses").answers[0];
    assert_eq!((a.rclass, a.ttl), (0x8001, 0x8000_0001));
}

#[test]
fn type_names() {
    assert_eq!(type_name(1), Some("A"));
    assert_eq!(type_name(65), Some("HTTPS"));
    assert_eq!(type_name(54), None);
}

#[test]
fn error_kinds_are_distinct() {
    let errs = [
        DnsError::ShortHeader { len: 0 },
        DnsError::NameTruncated { offset: 0 },
        DnsError::PointerOutOfRange {
            offset: 0,
            target: 0,
        },
        DnsError::PointerLoop { offset: 0 },
        DnsError::NameTooLong { offset: 0 },
        DnsError::BadLabelType { offset: 0, byte: 0 },
        DnsError::QuestionTruncated { offset: 0 },
        DnsError::RecordTruncated { offset: 0 },
        DnsError::RdataOverrun {
            offset: 0,
            rdlength: 0,
        },
        DnsError::LimitReached,
    ];
    for (i, e) in errs.iter().enumerate() {
        assert_eq!(e.index(), i);
        assert_eq!(e.as_str(), DnsError::KINDS[i]);
    }
}

#[test]
fn into_record_moves_fields() {
    let m = parse_message(&response("www.example.com", 1, 1, &[1, 2, 3, 4])).expect("parses");
    let ctx = DnsRecordContext {
        ts: 5,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_port: 5353,
        server_ip: IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9)),
        server_port: 53,
        transport: DnsTransport::Udp,
        frame_len: 99,
        latency_ns: Some(7),
    };
    let r = m.clone().into_record(ctx);
    assert_eq!(
        (
            r.qname.as_str(),
            r.an_count,
            r.size,
            r.frame_len,
            r.latency_ns
        ),
        ("www.example.com", 1, m.size, 99, Some(7))
    );
    assert_eq!(r.answers, m.answers);
}

// ---- DNS over TCP -------------------------------------------------------------------

fn framed(msg: &[u8]) -> Vec<u8> {
    cat(&[&(msg.len() as u16).to_be_bytes(), msg])
}

fn collect(r: Result<TcpDnsMessages<'_>, TcpDnsSkip>) -> Result<Vec<Vec<u8>>, TcpDnsSkip> {
    r.map(|it| it.map(<[u8]>::to_vec).collect())
}

#[test]
fn tcp_two_messages_in_one_segment() {
    let q1 = response("a.example", 1, 1, &[1, 1, 1, 1]);
    let q2 = response("b.example", 1, 1, &[2, 2, 2, 2]);
    let mut s = TcpDnsStream::new();
    s.syn(1000);
    let seg = cat(&[&framed(&q1), &framed(&q2)]);
    let got = collect(s.push(1001, &seg, 1)).expect("in order");
    assert_eq!(got, vec![q1, q2]);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn tcp_message_split_across_three_segments() {
    let q = response("split.example", 1, 1, &[1, 2, 3, 4]);
    let f = framed(&q);
    let mut s = TcpDnsStream::new();
    // Split inside the length prefix, then in the middle.
    assert_eq!(collect(s.push(0, &f[..1], 1)), Ok(vec![]));
    assert_eq!(collect(s.push(1, &f[1..10], 2)), Ok(vec![]));
    assert_eq!(s.buffered(), 10);
    assert_eq!(collect(s.push(10, &f[10..], 3)), Ok(vec![q.clone()]));
    // A following message plus the start of another.
    let seg = cat(&[&f, &f[..5]]);
    let n = f.len() as u32;
    assert_eq!(collect(s.push(n, &seg, 4)), Ok(vec![q]));
    assert_eq!(s.buffered(), 5);
}

#[test]
fn tcp_retransmissions_are_dropped() {
    let q = response("r.example", 1, 1, &[1, 2, 3, 4]);
    let f = framed(&q);
    let mut s = TcpDnsStream::new();
    s.syn(u32::MAX - 5); // data starts at u32::MAX - 4 and wraps.
    let base = u32::MAX - 4;
    assert_eq!(collect(s.push(base, &f[..20], 1)), Ok(vec![]));
    // Exact duplicate of the first segment.
    assert_eq!(
        collect(s.push(base, &f[..20], 2)),
        Err(TcpDnsSkip::Retransmission)
    );
    // Overlapping retransmission carrying the rest: only the new bytes count.
    assert_eq!(
        collect(s.push(base.wrapping_add(10), &f[10..], 3)),
        Ok(vec![q.clone()])
    );
    // An old segment again, after completion.
    assert_eq!(
        collect(s.push(base, &f, 4)),
        Err(TcpDnsSkip::Retransmission)
    );
    // Stream continues normally.
    let next = base.wrapping_add(f.len() as u32);
    assert_eq!(collect(s.push(next, &f, 5)), Ok(vec![q]));
}

#[test]
fn tcp_gap_abandons_the_stream_until_syn() {
    let q = response("g.example", 1, 1, &[1, 2, 3, 4]);
    let f = framed(&q);
    let mut s = TcpDnsStream::new();
    s.syn(0);
    assert_eq!(collect(s.push(1, &f[..8], 1)), Ok(vec![]));
    // Bytes 9..=12 missing.
    assert_eq!(collect(s.push(13, &f[12..], 2)), Err(TcpDnsSkip::Gap));
    assert_eq!(s.buffered(), 0);
    assert_eq!(s.abandoned(), Some(TcpDnsSkip::Gap));
    // Even the missing bytes do not revive it.
    assert_eq!(collect(s.push(9, &f[8..12], 3)), Err(TcpDnsSkip::Abandoned));
    // A new connection on the same tuple does.
    s.syn(500);
    assert_eq!(collect(s.push(501, &f, 4)), Ok(vec![q]));
}

#[test]
fn tcp_bad_length_prefix_abandons_after_good_messages() {
    let q = response("b.example", 1, 1, &[1, 2, 3, 4]);
    let seg = cat(&[&framed(&q), &[0, 3, 1, 2, 3], &framed(&q)]);
    let mut s = TcpDnsStream::new();
    let it = s.push(7, &seg, 1).expect("first message is fine");
    assert_eq!(it.abandoned(), Some(TcpDnsSkip::BadLength));
    assert_eq!(it.map(<[u8]>::to_vec).collect::<Vec<_>>(), vec![q]);
    assert_eq!(
        s.push(7 + seg.len() as u32, &[0, 12], 2).err(),
        Some(TcpDnsSkip::Abandoned)
    );
}

#[test]
fn tcp_largest_message_is_buffered_then_released() {
    let big = vec![0u8; 65535];
    let f = framed(&big);
    let mut s = TcpDnsStream::new();
    let mut seq = 0u32;
    for chunk in f.chunks(1460) {
        let n = collect(s.push(seq, chunk, 0)).expect("in order").len();
        seq += chunk.len() as u32;
        assert!(s.buffered() <= 65537);
        if seq as usize == f.len() {
            assert_eq!(n, 1);
        } else {
            assert_eq!(n, 0);
        }
    }
    assert_eq!(s.buffered(), 0);
}

#[test]
fn tcp_reassembler_keys_evicts_and_expires() {
    let q = response("k.example", 1, 1, &[1, 2, 3, 4]);
    let f = framed(&q);
    let sec = 1_000_000_000i64;
    let mut r = TcpDnsReassembler::new(TcpDnsConfig {
        max_streams: 2,
        idle_timeout_ns: 10 * sec,
    });
    // Pure ACKs create no state.
    assert_eq!(r.push("x", 0, &[], 0).map(|m| m.len()), Ok(0));
    assert!(r.is_empty());
    assert_eq!(r.push("a", 0, &f[..5], 0).map(|m| m.len()), Ok(0));
    r.syn("b", 99, sec);
    assert_eq!(r.len(), 2);
    // "a" is touched, so "b" is least recently used and is evicted by "c".
    assert_eq!(r.push("a", 5, &f[5..], 2 * sec).map(|m| m.len()), Ok(1));
    assert_eq!(r.push("c", 0, &f, 3 * sec).map(|m| m.len()), Ok(1));
    assert!(r.get(&"b").is_none() && r.get(&"a").is_some());
    assert_eq!(r.stats().streams_evicted, 1);
    // A gap and a retransmission are counted.
    assert_eq!(
        r.push("c", 0, &f, 4 * sec).err(),
        Some(TcpDnsSkip::Retransmission)
    );
    assert_eq!(r.push("c", 999, &f, 4 * sec).err(), Some(TcpDnsSkip::Gap));
    assert_eq!(r.stats().skipped(TcpDnsSkip::Retransmission), 1);
    assert_eq!(r.stats().skipped(TcpDnsSkip::Gap), 1);
    assert_eq!(r.stats().messages, 2);
    // "a" was last seen at 2 s, "c" at 4 s: at 13 s only "a" has idled 10 s.
    assert_eq!(r.expire(13 * sec), 1);
    assert!(r.get(&"a").is_none() && r.get(&"c").is_some());
    assert!(r.remove(&"c"));
    assert!(r.is_empty());
    assert_eq!(r.stats().streams_expired, 1);
}

// ---- query/response matching ---------------------------------------------------------

fn mkey(id: u16) -> MatchKey {
    MatchKey {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)),
        server_port: 53,
        id,
    }
}

#[test]
fn matcher_pairs_responses_and_measures_latency() {
    let mut m = QueryMatcher::new(MatchConfig::default());
    assert!(m.on_query(mkey(1), "WwW.Example.com", 1, 1_000));
    assert!(
        !m.on_query(mkey(1), "www.example.com", 1, 2_000),
        "retransmission keeps the first"
    );
    // Case differs (0x20 randomisation): still a match.
    assert_eq!(
        m.on_response(&mkey(1), "www.example.COM", 1, 5_000),
        Some(4_000)
    );
    // A duplicate response finds nothing.
    assert_eq!(m.on_response(&mkey(1), "www.example.com", 1, 6_000), None);
    // Same key, different question: no match, query kept.
    assert!(m.on_query(mkey(2), "a.example", 1, 10_000));
    assert_eq!(m.on_response(&mkey(2), "b.example", 1, 11_000), None);
    assert_eq!(m.on_response(&mkey(2), "a.example", 28, 11_000), None);
    // A response without a question section matches on the key.
    assert_eq!(m.on_response(&mkey(2), "", 0, 12_000), Some(2_000));
    let s = m.stats();
    assert_eq!(
        (
            s.queries,
            s.duplicate_queries,
            s.matched,
            s.unmatched_responses,
            s.question_mismatch
        ),
        (2, 1, 2, 1, 2)
    );
    assert!(m.is_empty());
}

#[test]
fn matcher_expires_and_evicts() {
    let sec = 1_000_000_000i64;
    let mut m = QueryMatcher::new(MatchConfig {
        timeout_ns: 30 * sec,
        capacity: 3,
    });
    for id in 0..3 {
        m.on_query(mkey(id), "q.example", 1, i64::from(id) * sec);
    }
    // Full: the oldest (id 0) is evicted.
    m.on_query(mkey(3), "q.example", 1, 3 * sec);
    assert_eq!(m.stats().evicted, 1);
    assert_eq!(m.on_response(&mkey(0), "q.example", 1, 4 * sec), None);
    // At 32 s ids 1 and 2 (sent at 1 s and 2 s) have expired; id 3 has not.
    assert_eq!(
        m.on_response(&mkey(3), "q.example", 1, 32 * sec),
        Some(29 * sec)
    );
    assert_eq!(m.stats().expired, 2);
    assert!(m.is_empty());
    // Lots of quickly answered queries do not grow the queue without bound.
    for i in 0..10_000u16 {
        m.on_query(mkey(i), "q.example", 1, 40 * sec);
        m.on_response(&mkey(i), "q.example", 1, 40 * sec);
    }
    assert!(m.queue_len() <= 2 * 16 + 1);
}

// ---- property tests -----------------------------------------------------------

/// Reference escaping, written independently of `name::read_name`.
fn present(labels: &[Vec<u8>]) -> String {
    if labels.is_empty() {
        return ".".into();
    }
    labels
        .iter()
        .map(|l| {
            l.iter()
                .map(|&b| match b {
                    b'.' => "\\.".to_string(),
                    b'\\' => "\\\\".to_string(),
                    0x21..=0x7e => (b as char).to_string(),
                    _ => format!("\\{b:03}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Test-side encoder: presentation form → wire form (inverse of the rules).
fn encode_presentation(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if name == "." {
        out.push(0);
        return out;
    }
    let b = name.as_bytes();
    let mut label = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b[i + 1].is_ascii_digit() => {
                let d = std::str::from_utf8(&b[i + 1..i + 4]).expect("ascii");
                label.push(d.parse::<u8>().expect("\\DDD"));
                i += 4;
            }
            b'\\' => {
                label.push(b[i + 1]);
                i += 2;
            }
            b'.' => {
                out.push(label.len() as u8);
                out.append(&mut label);
                i += 1;
            }
            c => {
                label.push(c);
                i += 1;
            }
        }
    }
    out.push(label.len() as u8);
    out.append(&mut label);
    out.push(0);
    out
}

fn labels_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let label = prop_oneof![
        // Host-name-ish labels (the common fast path) ...
        proptest::string::string_regex("[a-zA-Z0-9_-]{1,63}")
            .expect("regex")
            .prop_map(String::into_bytes),
        // ... and arbitrary bytes.
        proptest::collection::vec(any::<u8>(), 1..=63),
    ];
    proptest::collection::vec(label, 0..8).prop_filter("fits in 255 bytes", |ls| {
        ls.iter().map(|l| l.len() + 1).sum::<usize>() < MAX_NAME_WIRE_LEN
    })
}

/// A valid response with several RRs, used as a seed for mutation.
fn seed_message() -> Vec<u8> {
    let mut m = header(0x8180, 1, 4, 1, 1);
    m.extend(wire("www.example.com"));
    m.extend_from_slice(&[0, 1, 0, 1]);
    rr(&mut m, &ptr(12), 5, &cat(&[b"\x03cdn", &ptr(16)]));
    rr(&mut m, &ptr(33), 1, &[1, 2, 3, 4]);
    rr(&mut m, &ptr(33), 15, &cat(&[&[0, 10], &ptr(16)]));
    rr(
        &mut m,
        &ptr(16),
        46,
        &cat(&[
            &[0, 1, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1],
            &ptr(16),
            b"sig",
        ]),
    );
    rr(&mut m, &ptr(16), 6, &cat(&[&ptr(16), &ptr(12), &[0; 20]]));
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0]);
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(msg in proptest::collection::vec(any::<u8>(), 0..700)) {
        let start = Instant::now();
        let _ = parse_message(&msg);
        let _ = peek_header(&msg);
        prop_assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut msg = seed_message();
        for (at, byte) in edits {
            let i = at.index(msg.len());
            msg[i] = byte;
        }
        let n = cut.index(msg.len() + 1);
        let start = Instant::now();
        if let Ok(m) = parse_message(&msg[..n]) {
            prop_assert!(m.answers.len() <= usize::from(m.ancount));
            prop_assert_eq!(m.answers_truncated, m.answers.len() < usize::from(m.ancount));
        }
        prop_assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn names_round_trip(labels in labels_strategy()) {
        let text = present(&labels);
        let encoded = encode_presentation(&text);
        let mut expected_wire = Vec::new();
        for l in &labels {
            expected_wire.push(l.len() as u8);
            expected_wire.extend_from_slice(l);
        }
        expected_wire.push(0);
        prop_assert_eq!(&encoded, &expected_wire);
        let msg = cat(&[&header(0, 1, 0, 0, 0), &encoded, &[0, 1, 0, 1]]);
        let m = parse_message(&msg).expect("valid name");
        prop_assert_eq!(m.qname, text);
    }

    #[test]
    fn tcp_any_segmentation_yields_the_same_messages(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        seq0 in any::<u32>(),
    ) {
        let msgs = [seed_message(), response("a.example", 1, 1, &[1, 2, 3, 4]), seed_message()];
        let stream: Vec<u8> = msgs.iter().flat_map(|m| framed(m)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len())).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut s = TcpDnsStream::new();
        s.syn(seq0.wrapping_sub(1));
        let mut got = Vec::new();
        for w in points.windows(2) {
            let seg = &stream[w[0]..w[1]];
            // Every segment twice: the duplicate must change nothing.
            for _ in 0..2 {
                match s.push(seq0.wrapping_add(w[0] as u32), seg, 0) {
                    Ok(it) => got.extend(it.map(<[u8]>::to_vec)),
                    Err(e) => prop_assert!(e == TcpDnsSkip::Retransmission || seg.is_empty()),
                }
            }
        }
        prop_assert_eq!(got, msgs.to_vec());
    }
}

/// Rough speed check (run with `cargo test --release -- --ignored dns::tests::speed --nocapture`):
/// a typical response (question, CNAME + 2 A, EDNS) and a plain A query.
#[test]
#[ignore = "timing; run manually in release"]
fn speed() {
    let mut resp = header(0x8180, 1, 3, 0, 1);
    resp.extend(wire("www.example.com"));
    resp.extend_from_slice(&[0, 1, 0, 1]);
    rr(
        &mut resp,
        &ptr(12),
        5,
        &cat(&[b"\x0bedge-static\x06fastly", &ptr(16)]),
    );
    rr(&mut resp, &ptr(45), 1, &[151, 101, 1, 1]);
    rr(&mut resp, &ptr(45), 1, &[151, 101, 65, 1]);
    resp.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    let query = cat(&[
        &header(0x0100, 1, 0, 0, 0),
        &wire("www.example.com"),
        &[0, 1, 0, 1],
    ]);
    let check = parse_message(&resp).expect("parses");
    assert_eq!(check.answers.len(), 3);
    assert_eq!(check.answers[1].name, "edge-static.fastly.example.com");
    for (what, msg) in [("response", &resp), ("query", &query)] {
        let n = 1_000_000;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                parse_message(std::hint::black_box(msg))
                    .map(|m| m.answers.len())
                    .ok(),
            );
        }
        println!(
            "{what} ({} bytes): {:.0} ns/message",
            msg.len(),
            start.elapsed().as_nanos() as f64 / f64::from(n)
        );
    }
}

/// Worst-case timing (run manually in release, like `speed`): a 64 KiB
/// message whose every answer owner and CNAME target walks a long pointer
/// chain to a 253-byte name of escaped bytes, each from a different entry
/// point so nothing is cached.
#[test]
#[ignore = "timing; run manually in release"]
fn speed_worst_case() {
    let mut m = header(0x8180, 1, 0xffff, 0, 0);
    // Question: a 253-byte name of 0xff bytes at 12.
    let l = [0xffu8; 63];
    m.extend(wire_labels(&[&l, &l, &l, &[0xff; 61]]));
    m.extend_from_slice(&[0, 1, 0, 1]);
    // First answer: an unknown type whose RDATA is a chain of 126 pointers,
    // each to the previous one (the first to the question name).
    let rdata_at = m.len() + 2 + 10;
    let mut prev = 12u16;
    let mut rdata = Vec::new();
    let mut chain = Vec::new();
    for _ in 0..126 {
        let here = (rdata_at + rdata.len()) as u16;
        rdata.extend(ptr(prev));
        chain.push(here);
        prev = here;
    }
    rr(&mut m, &ptr(12), 65280, &rdata);
    let mut i = 0;
    while m.len() + 14 <= 65535 {
        let a = chain[chain.len() - 1 - i % 60];
        let b = chain[chain.len() - 1 - (i + 30) % 60];
        rr(&mut m, &ptr(a), 5, &ptr(b));
        i += 1;
    }
    let start = Instant::now();
    let n = 20;
    let mut answers = 0;
    for _ in 0..n {
        let p = parse_message(std::hint::black_box(&m)).expect("header");
        assert_eq!(p.answers_error, Some(DnsError::LimitReached));
        answers = p.answers.len();
    }
    let per = start.elapsed() / n;
    println!(
        "worst case: {} bytes, {answers} answers decoded, {per:?} per message",
        m.len()
    );
}
