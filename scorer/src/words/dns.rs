//! DNS words, as Spot's master `DNSWordCreation` builds them
//! (`spot-reference.md` §2.2):
//! `<tdclass>_<flog2(frame_len)>_<hour>_<flog2(sublen)>_<entbin>_<flog2(labels)>_<qtype>_<rcode>`.
//!
//! The document is the client (`ip_dst` of the response in Spot). Spot only
//! ingested responses, so by default only records with `is_response` make
//! words ([`DnsWordConfig::responses_only`]); counting the query too would
//! double every lookup. The hour is the UTC hour of `ts` (Spot parsed it from
//! tshark's text time; [`spot_dns_word`] keeps that path for the reference
//! examples, including its `word_error` on an unparseable time).

use std::net::IpAddr;

use osprey_segment::records::DnsRecord;

use super::domain::{DomainPopularity, DomainRules};
use super::{ENTROPY_CUTS, WORD_ERROR, bin, floor_log2, utc_hour};

/// Settings of DNS word creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsWordConfig {
    /// The user's own domain label (Spot's `USER_DOMAIN`, e.g. `intel`);
    /// empty for none.
    pub user_domain: String,
    /// Make words only from responses, as Spot did.
    pub responses_only: bool,
    /// How query names are split into domain and subdomain.
    pub domain_rules: DomainRules,
}

impl Default for DnsWordConfig {
    fn default() -> Self {
        DnsWordConfig { user_domain: String::new(), responses_only: true, domain_rules: DomainRules::default() }
    }
}

impl DnsWordConfig {
    /// Spot's word creation exactly, with `user_domain` as its class-2 label.
    pub fn spot(user_domain: &str) -> Self {
        DnsWordConfig { user_domain: user_domain.to_string(), responses_only: true, domain_rules: DomainRules::Spot }
    }
}

/// Spot's hour from tshark's `frame.time` text: split on runs of spaces,
/// take token 3 (`HH:MM:SS.fraction`), then its first `:` field.
pub fn hour_from_frame_time(frame_time: &str) -> Option<i32> {
    let token = frame_time.split(' ').filter(|t| !t.is_empty()).nth(3)?;
    token.split(':').next()?.parse().ok()
}

/// The word from already-extracted fields (hour as an integer).
pub fn dns_word(hour: i64, frame_len: u32, qname: &str, qtype: i64, rcode: i64, top: &DomainPopularity, cfg: &DnsWordConfig) -> String {
    let d = cfg.domain_rules.parse(qname);
    format!(
        "{}_{}_{}_{}_{}_{}_{}_{}",
        top.class(&d.domain, &cfg.user_domain),
        floor_log2(i64::from(frame_len)),
        hour,
        floor_log2(d.subdomain_len() as i64),
        bin(d.subdomain_entropy(), &ENTROPY_CUTS),
        floor_log2(d.num_labels as i64),
        qtype,
        rcode
    )
}

/// The word exactly as Spot computed it from its Hive columns, including the
/// `word_error` when the hour cannot be read from `frame_time`.
pub fn spot_dns_word(frame_time: &str, frame_len: u32, qname: &str, qtype: i64, rcode: i64, top: &DomainPopularity, user_domain: &str) -> String {
    match hour_from_frame_time(frame_time) {
        Some(h) => dns_word(i64::from(h), frame_len, qname, qtype, rcode, top, &DnsWordConfig::spot(user_domain)),
        None => WORD_ERROR.to_string(),
    }
}

/// The (client document, word) of a DNS record, or `None` when Spot's input
/// hygiene drops the record (a query when only responses count, or an empty
/// query name).
pub fn dns_record_word(rec: &DnsRecord, top: &DomainPopularity, cfg: &DnsWordConfig) -> Option<(IpAddr, String)> {
    if cfg.responses_only && !rec.is_response {
        return None;
    }
    let qname = rec.qname.strip_suffix('.').unwrap_or(&rec.qname);
    if qname.is_empty() || qname == "-" || qname == "(empty)" {
        return None;
    }
    let word = dns_word(i64::from(utc_hour(rec.ts)), rec.frame_len, qname, i64::from(rec.qtype), i64::from(rec.rcode), top, cfg);
    Some((rec.client_ip, word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_segment::records::DnsTransport;

    #[test]
    fn reference_example() {
        let w = spot_dns_word("May  12 2015 11:32:45.543421000 UTC", 213, "abcdefg.apache.com", 1, 0, &DomainPopularity::empty(), "apache");
        assert_eq!(w, "2_7_11_2_10_1_1_0");
    }

    #[test]
    fn popular_and_unknown_domains() {
        let top = DomainPopularity::from_labels(["google"]);
        let spot = DnsWordConfig::spot("");
        let osprey = DnsWordConfig { domain_rules: DomainRules::Osprey, ..DnsWordConfig::default() };
        let w = dns_word(3, 90, "www.google.com", 1, 0, &top, &spot);
        // sub "www": len 3 → 1, entropy 0 → bin 0, 3 labels → 1.
        assert_eq!(w, "1_6_3_1_0_1_1_0");
        assert_eq!(dns_word(3, 90, "www.google.com", 1, 0, &top, &osprey), w, "same under Osprey's rules");
        let w = dns_word(3, 90, "aGVsbG8gd29ybGQ.t.example.info", 16, 3, &top, &spot);
        // .info is unparseable for Spot: domain None, no subdomain.
        assert_eq!(w, "0_6_3_0_0_2_16_3");
        // Osprey's rules measure the lower-cased subdomain "agvsbg8gd29ybgq.t":
        // 17 characters → 4, entropy 3.50 bits → bin 12 (≤ 3.6).
        let w = dns_word(3, 90, "aGVsbG8gd29ybGQ.t.example.info", 16, 3, &top, &osprey);
        assert_eq!(w, "0_6_3_4_12_2_16_3");
    }

    #[test]
    fn bad_frame_time_is_word_error() {
        let top = DomainPopularity::empty();
        assert_eq!(spot_dns_word("garbage", 100, "a.b.com", 1, 0, &top, ""), WORD_ERROR);
        assert_eq!(spot_dns_word("May 12 2015 xx:32:45 UTC", 100, "a.b.com", 1, 0, &top, ""), WORD_ERROR);
    }

    fn rec(is_response: bool, qname: &str) -> DnsRecord {
        DnsRecord {
            ts: (11 * 3600 + 32 * 60) * 1_000_000_000,
            client_ip: IpAddr::from([192, 168, 1, 5]),
            client_port: 5353,
            server_ip: IpAddr::from([8, 8, 8, 8]),
            server_port: 53,
            transport: DnsTransport::Udp,
            id: 1,
            is_response,
            opcode: 0,
            rcode: 0,
            flags: 0x8180,
            qname: qname.to_string(),
            qtype: 1,
            qclass: 1,
            an_count: 1,
            ns_count: 0,
            ar_count: 0,
            answers: vec![],
            size: 100,
            frame_len: 213,
            latency_ns: None,
        }
    }

    #[test]
    fn record_word_uses_client_and_utc_hour() {
        let cfg = DnsWordConfig::spot("apache");
        let top = DomainPopularity::empty();
        let (doc, w) = dns_record_word(&rec(true, "abcdefg.apache.com."), &top, &cfg).expect("word");
        assert_eq!(doc, IpAddr::from([192, 168, 1, 5]));
        assert_eq!(w, "2_7_11_2_10_1_1_0");
        assert!(dns_record_word(&rec(false, "abcdefg.apache.com"), &top, &cfg).is_none());
        assert!(dns_record_word(&rec(true, ""), &top, &cfg).is_none());
        let all = DnsWordConfig { responses_only: false, ..cfg };
        assert!(dns_record_word(&rec(false, "abcdefg.apache.com"), &top, &all).is_some());
    }
}
