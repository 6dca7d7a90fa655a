//! Proxy words, as Spot's master `ProxyWordCreation` builds them
//! (`spot-reference.md` §2.3):
//! `<tdclass(host)>_<hour>_<method>_<entbin(uri)>_<ctype-top>_<flog2(uacount)>_<flog2(urilen)>_<respcode>`.
//!
//! The document is `clientip`. The hour is read from `p_time` as Spot did
//! (`HH:MM:SS`, first field as an integer), so an unparseable time gives
//! `word_error`, as does a user agent missing from the counts table.
//!
//! Spot hard-coded `intel` as the "safe" (class 2) proxy domain;
//! [`ProxyWordConfig::spot`] keeps that, while the default uses the
//! configured user domain (empty: no class 2).
//!
//! User-agent counts are whatever [`UserAgentCounts`] the caller builds. Spot
//! recounted them over the frame being scored, so a rare agent's word can be
//! unseen in training; `osprey` callers may instead count over the training
//! window, which is the fix the reference suggests.

use std::collections::HashMap;
use std::net::IpAddr;

use osprey_segment::records::ProxyRecord;

use super::domain::{DomainPopularity, DomainRules};
use super::{ENTROPY_CUTS, WORD_ERROR, bin, entropy, floor_log2, java_split};

/// Settings of proxy word creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyWordConfig {
    /// Domain label that gets top-domain class 2.
    pub user_domain: String,
    /// How host names are split to find their domain label.
    pub domain_rules: DomainRules,
}

impl ProxyWordConfig {
    /// Spot's behaviour: `intel` is the class-2 domain, Spot's domain parsing.
    pub fn spot() -> Self {
        ProxyWordConfig { user_domain: "intel".to_string(), domain_rules: DomainRules::Spot }
    }
}

/// How many times each exact user-agent string occurs in a frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgentCounts {
    counts: HashMap<String, u64>,
}

impl UserAgentCounts {
    /// Counts the user agents of `records`.
    pub fn count<'a, I: IntoIterator<Item = &'a ProxyRecord>>(records: I) -> Self {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for r in records {
            *counts.entry(r.useragent.clone()).or_default() += 1;
        }
        UserAgentCounts { counts }
    }

    /// Builds from explicit counts.
    pub fn from_map(counts: HashMap<String, u64>) -> Self {
        UserAgentCounts { counts }
    }

    /// The count of one agent, if present.
    pub fn get(&self, agent: &str) -> Option<u64> {
        self.counts.get(agent).copied()
    }
}

/// Inputs of one proxy word, as Spot's UDF took them.
#[derive(Debug, Clone, Copy)]
pub struct ProxyFields<'a> {
    /// `cs-host`.
    pub host: &'a str,
    /// `time` as logged, `HH:MM:SS`.
    pub time: &'a str,
    /// `cs-method`.
    pub reqmethod: &'a str,
    /// Spot's `fulluri`.
    pub uri: &'a str,
    /// `rs(Content-Type)`.
    pub content_type: &'a str,
    /// `cs(User-Agent)`.
    pub useragent: &'a str,
    /// `sc-status`, `None` when null.
    pub respcode: Option<&'a str>,
}

/// Spot's proxy word, or `word_error` when a field cannot be read.
pub fn spot_proxy_word(f: &ProxyFields<'_>, top: &DomainPopularity, agents: &UserAgentCounts, cfg: &ProxyWordConfig) -> String {
    let Some(hour) = f.time.split(':').next().and_then(|h| h.parse::<i32>().ok()) else {
        return WORD_ERROR.to_string();
    };
    let Some(agent_count) = agents.get(f.useragent) else {
        return WORD_ERROR.to_string();
    };
    let domain = cfg.domain_rules.parse(f.host).domain;
    let ctype_parts = java_split(f.content_type, '/');
    let ctype = ctype_parts.first().copied().unwrap_or("unknown_content_type");
    // Java's String.length counts UTF-16 units.
    let uri_len = f.uri.encode_utf16().count() as i64;
    format!(
        "{}_{}_{}_{}_{}_{}_{}_{}",
        top.class(&domain, &cfg.user_domain),
        hour,
        f.reqmethod,
        bin(entropy(f.uri), &ENTROPY_CUTS),
        ctype,
        floor_log2(i64::try_from(agent_count).unwrap_or(i64::MAX)),
        floor_log2(uri_len),
        f.respcode.unwrap_or("unknown_response_code"),
    )
}

/// The (client document, word) of a proxy record, or `None` when Spot's
/// hygiene drops it (no client IP). An empty `respcode` counts as null.
pub fn proxy_record_word(rec: &ProxyRecord, top: &DomainPopularity, agents: &UserAgentCounts, cfg: &ProxyWordConfig) -> Option<(IpAddr, String)> {
    let client = rec.clientip?;
    let fields = ProxyFields {
        host: &rec.host,
        time: &rec.p_time,
        reqmethod: &rec.reqmethod,
        uri: &rec.fulluri,
        content_type: &rec.resconttype,
        useragent: &rec.useragent,
        respcode: (!rec.respcode.is_empty()).then_some(rec.respcode.as_str()),
    };
    Some((client, spot_proxy_word(&fields, top, agents, cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>() -> ProxyFields<'a> {
        ProxyFields {
            host: "intel.com",
            time: "00:57:36",
            reqmethod: "PUT",
            uri: "ab",
            content_type: "text/plain",
            useragent: "Mozilla/5.0",
            respcode: Some("202"),
        }
    }

    fn agents() -> UserAgentCounts {
        UserAgentCounts::from_map(HashMap::from([("Mozilla/5.0".to_string(), 1)]))
    }

    #[test]
    fn reference_example() {
        let w = spot_proxy_word(&fields(), &DomainPopularity::empty(), &agents(), &ProxyWordConfig::spot());
        assert_eq!(w, "2_0_PUT_4_text_0_1_202");
    }

    #[test]
    fn default_config_has_no_safe_domain() {
        let w = spot_proxy_word(&fields(), &DomainPopularity::empty(), &agents(), &ProxyWordConfig::default());
        assert_eq!(w, "0_0_PUT_4_text_0_1_202");
        let top = DomainPopularity::from_labels(["intel"]);
        let w = spot_proxy_word(&fields(), &top, &agents(), &ProxyWordConfig::default());
        assert_eq!(w, "1_0_PUT_4_text_0_1_202");
    }

    #[test]
    fn content_type_and_response_code_edge_cases() {
        let top = DomainPopularity::empty();
        let cfg = ProxyWordConfig::spot();
        let mut f = fields();
        f.content_type = "/";
        f.respcode = None;
        assert_eq!(spot_proxy_word(&f, &top, &agents(), &cfg), "2_0_PUT_4_unknown_content_type_0_1_unknown_response_code");
        f.content_type = "";
        assert_eq!(spot_proxy_word(&f, &top, &agents(), &cfg), "2_0_PUT_4__0_1_unknown_response_code");
    }

    #[test]
    fn word_error_cases() {
        let top = DomainPopularity::empty();
        let cfg = ProxyWordConfig::spot();
        let mut f = fields();
        f.time = "noon";
        assert_eq!(spot_proxy_word(&f, &top, &agents(), &cfg), WORD_ERROR);
        let mut f = fields();
        f.useragent = "curl/8.0";
        assert_eq!(spot_proxy_word(&f, &top, &agents(), &cfg), WORD_ERROR);
    }

    #[test]
    fn record_word_counts_agents_and_needs_client() {
        let mut r = ProxyRecord {
            p_time: "13:01:02".into(),
            host: "www.example.com".into(),
            reqmethod: "GET".into(),
            useragent: "UA".into(),
            resconttype: "text/html".into(),
            respcode: "200".into(),
            fulluri: "www.example.com/index.html".into(),
            clientip: Some(IpAddr::from([10, 1, 1, 1])),
            ..ProxyRecord::default()
        };
        let recs = vec![r.clone(), r.clone(), r.clone()];
        let agents = UserAgentCounts::count(&recs);
        let (doc, w) = proxy_record_word(&r, &DomainPopularity::empty(), &agents, &ProxyWordConfig::default()).expect("word");
        assert_eq!(doc, IpAddr::from([10, 1, 1, 1]));
        // 3 agents → 1; uri length 26 → 4.
        assert!(w.starts_with("0_13_GET_"), "{w}");
        assert!(w.ends_with("_text_1_4_200"), "{w}");
        r.clientip = None;
        assert!(proxy_record_word(&r, &DomainPopularity::empty(), &agents, &ProxyWordConfig::default()).is_none());
    }
}
