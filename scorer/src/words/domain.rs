//! Domain parsing as Spot's `DomainProcessor` does it, and the "top domain"
//! popularity set that replaces Alexa's top-1m list.
//!
//! Spot strips one country-code label, then one of 7 generic TLDs, and calls
//! the last remaining label the *domain* (so `www.google.co.uk` has domain
//! `co`, a quirk kept on purpose: the words must match Spot's). Names whose last
//! label is in neither list, reverse lookups, and single labels get domain and
//! subdomain `"None"`.
//!
//! Those are [`DomainRules::Spot`], the default. [`DomainRules::Osprey`]
//! (`--domain-rules osprey`) fixes the parsing weakness the reference lists
//! (§7.2): any last label is a top-level domain (so `.info`, `.xyz` or a
//! tunnel's private `.test` still give a domain and a subdomain to measure),
//! a second-level registry label under a country code is stripped too
//! (`www.google.co.uk` → `google`), and names are compared in lower case (DNS
//! is case-insensitive, and resolvers randomise query case).
//!
//! It is not the default because measured it is not a clear win. On the
//! demo it finds the `.test` tunnel and the DGA with fewer benign events
//! ahead (45 instead of 57 and 77). On the real captures of
//! `tests/tests/detection.rs` it gives the benign resolver traffic many
//! one-off words (leaked `.local` and `.lan` names, hashed CDN labels under
//! new TLDs) that now outrank the iodine tunnel: iodine's best rank went
//! from 42 to 281 of 18,359 and its median from 393 to 618 (default seed,
//! measured before the sampler of session 3; BENCHMARKS.md).
//!
//! Popularity ([`DomainPopularity`]) is keyed by that same domain label, since
//! Spot compared only the first label of each Alexa entry (`google.com` →
//! `google`). Alexa's list no longer exists, so the default is learned from the
//! DNS data itself: a domain label is popular when at least N distinct clients
//! queried it ([`PopularityThreshold`]). A Tranco/Alexa-style `rank,domain`
//! CSV can be loaded instead.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::net::IpAddr;

use osprey_segment::records::DnsRecord;

use super::java_split;

/// Spot's country-code set: 252 two-letter codes, `krd`, and (a quirk kept for
/// fidelity) the empty string, 254 entries in all.
const COUNTRY_CODES: &str = "\
ac ad ae af ag ai al am an ao aq ar as at au aw ax az \
ba bb bd be bf bg bh bi bj bm bn bo bq br bs bt bv bw by bz \
ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz \
de dj dk dm do dz \
ec ee eg eh er es et eu \
fi fj fk fm fo fr \
ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy \
hk hm hn hr ht hu \
id ie il im in io iq ir is it \
je jm jo jp \
ke kg kh ki km kn kp kr krd kw ky kz \
la lb lc li lk lr ls lt lu lv ly \
ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz \
na nc ne nf ng ni nl no np nr nu nz \
om \
pa pe pf pg ph pk pl pm pn pr ps pt pw py \
qa \
re ro rs ru rw \
sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz \
tc td tf tg th tj tk tl tm tn to tp tr tt tv tw tz \
ua ug uk us uy uz \
va vc ve vg vi vn vu \
wf ws \
ye yt \
za zm zw";

/// The 7 generic TLDs Spot strips after the country code.
const GENERIC_TLDS: [&str; 7] = ["com", "org", "net", "int", "edu", "gov", "mil"];

/// Spot's placeholder for "no domain" / "no subdomain".
pub const NONE: &str = "None";

/// Second-level labels that registries use under a country code
/// (`co.uk`, `com.au`, `ac.jp`, `gob.mx`, ...), stripped by
/// [`DomainRules::Osprey`]. A short fixed list instead of the Public Suffix
/// List: it covers the common registries without a dependency or a file to
/// keep current, and a miss only moves the domain label one to the left.
const SECOND_LEVEL: [&str; 17] = ["ac", "co", "com", "edu", "go", "gob", "gouv", "gov", "ltd", "mil", "ne", "net", "nic", "or", "org", "plc", "sch"];

/// How names are split into domain and subdomain (saved with a model, so
/// training and scoring split alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DomainRules {
    /// Spot's `DomainProcessor`, quirks included ([`parse_domain`]).
    #[default]
    Spot,
    /// Any last label is the top-level domain, country-code registries are
    /// stripped, names are lower-cased ([`parse_domain_osprey`]).
    Osprey,
}

impl DomainRules {
    /// The name saved in model settings and taken by `--domain-rules`.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainRules::Spot => "spot",
            DomainRules::Osprey => "osprey",
        }
    }

    /// The rules named `name` (see [`DomainRules::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "spot" => Some(DomainRules::Spot),
            "osprey" => Some(DomainRules::Osprey),
            _ => None,
        }
    }

    /// Splits `name` under these rules.
    pub fn parse(self, name: &str) -> DomainParts {
        match self {
            DomainRules::Spot => parse_domain(name),
            DomainRules::Osprey => parse_domain_osprey(name),
        }
    }
}

/// Whether `label` is in Spot's country-code set (the empty string included).
pub fn is_country_code(label: &str) -> bool {
    label.is_empty() || COUNTRY_CODES.split(' ').any(|c| c == label)
}

fn is_generic_tld(label: &str) -> bool {
    GENERIC_TLDS.contains(&label)
}

/// The parts of a name Spot's DNS and proxy words use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainParts {
    /// The domain label, or `"None"`.
    pub domain: String,
    /// The labels before the domain joined with `.`, or `"None"`.
    pub subdomain: String,
    /// Number of labels of the whole name (Spot's `numPeriods`, Java split).
    pub num_labels: usize,
}

impl DomainParts {
    /// Character length of the subdomain, 0 when it is `"None"`.
    pub fn subdomain_len(&self) -> usize {
        if self.subdomain == NONE { 0 } else { self.subdomain.chars().count() }
    }

    /// Shannon entropy of the subdomain (dots included), 0 when it is `"None"`.
    pub fn subdomain_entropy(&self) -> f64 {
        if self.subdomain == NONE { 0.0 } else { super::entropy(&self.subdomain) }
    }
}

/// Splits a name into Spot's domain/subdomain (`DomainProcessor.extractDomainSubdomain`).
pub fn parse_domain(name: &str) -> DomainParts {
    let labels = java_split(name, '.');
    let n = labels.len();
    let mut domain = NONE.to_string();
    let mut subdomain = NONE.to_string();
    let reverse = n > 2 && labels[n - 1] == "arpa" && labels[n - 2] == "in-addr";
    if n >= 2 && !reverse && (is_country_code(labels[n - 1]) || is_generic_tld(labels[n - 1])) {
        let mut rest: &[&str] = &labels;
        if let Some((last, head)) = rest.split_last()
            && is_country_code(last)
        {
            rest = head;
        }
        if let Some((last, head)) = rest.split_last()
            && is_generic_tld(last)
        {
            rest = head;
        }
        if let Some((last, head)) = rest.split_last() {
            domain = (*last).to_string();
            if !head.is_empty() {
                subdomain = head.join(".");
            }
        }
    }
    DomainParts { domain, subdomain, num_labels: n }
}

/// Splits a name by [`DomainRules::Osprey`]: the last label is the
/// top-level domain whatever it is, a `SECOND_LEVEL` label under a country
/// code is stripped with it, and the next label is the domain. Reverse
/// lookups (`.arpa`), single labels and names with an empty domain label get
/// `"None"` as in Spot. The label count is Spot's (Java split).
pub fn parse_domain_osprey(name: &str) -> DomainParts {
    let lower = name.to_ascii_lowercase();
    let labels = java_split(&lower, '.');
    let n = labels.len();
    let none = || DomainParts { domain: NONE.to_string(), subdomain: NONE.to_string(), num_labels: n };
    if n < 2 || labels[n - 1].is_empty() || labels[n - 1] == "arpa" {
        return none();
    }
    let suffix = if n >= 3 && is_country_code(labels[n - 1]) && SECOND_LEVEL.contains(&labels[n - 2]) { 2 } else { 1 };
    let domain = labels[n - suffix - 1];
    if domain.is_empty() {
        return none();
    }
    let head = &labels[..n - suffix - 1];
    let subdomain = if head.is_empty() { NONE.to_string() } else { head.join(".") };
    DomainParts { domain: domain.to_string(), subdomain, num_labels: n }
}

/// When a learned domain counts as popular.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PopularityThreshold {
    /// Absolute minimum number of distinct clients.
    pub min_clients: usize,
    /// Minimum fraction of all distinct clients seen in the corpus.
    pub min_fraction: f64,
}

impl Default for PopularityThreshold {
    /// max(3, 1% of clients): 3 keeps a single curious host (or a pair) from
    /// making a tunnel domain "popular" in a small network, and 1% scales the
    /// bar with the network so that only widely used domains qualify.
    fn default() -> Self {
        PopularityThreshold { min_clients: 3, min_fraction: 0.01 }
    }
}

impl PopularityThreshold {
    /// The number of distinct clients needed out of `total_clients`.
    pub fn required(&self, total_clients: usize) -> usize {
        let frac = (self.min_fraction * total_clients as f64).ceil() as usize;
        self.min_clients.max(frac).max(1)
    }
}

/// Errors reading a popularity list.
#[derive(Debug, thiserror::Error)]
pub enum PopularityError {
    /// The list could not be read.
    #[error("reading domain list: {0}")]
    Io(#[from] std::io::Error),
    /// A line did not have the `rank,domain` form.
    #[error("domain list line {line}: expected `rank,domain`, got {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
}

/// The set of "top" domain labels (Spot's Alexa set), compared against the
/// domain label of [`parse_domain`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainPopularity {
    labels: HashSet<String>,
}

impl DomainPopularity {
    /// An empty set (every domain is class 0 unless it is the user's).
    pub fn empty() -> Self {
        Self::default()
    }

    /// A set of domain labels given directly.
    pub fn from_labels<I, S>(labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DomainPopularity { labels: labels.into_iter().map(Into::into).collect() }
    }

    /// Reads a Tranco/Alexa CSV (`rank,domain` per line). As Spot did, only
    /// the first label of each domain is kept (`google.com` → `google`). A
    /// header line whose first field is not a number is skipped, as are blank
    /// lines.
    pub fn from_rank_csv<R: BufRead>(reader: R) -> Result<Self, PopularityError> {
        let mut labels = HashSet::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line?;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let Some((rank, domain)) = text.split_once(',') else {
                return Err(PopularityError::BadLine { line: i + 1, text: line });
            };
            if rank.trim().parse::<u64>().is_err() {
                if i == 0 {
                    continue;
                }
                return Err(PopularityError::BadLine { line: i + 1, text: line });
            }
            let first = domain.trim().split('.').next().unwrap_or("");
            if !first.is_empty() {
                labels.insert(first.to_ascii_lowercase());
            }
        }
        Ok(DomainPopularity { labels })
    }

    /// Learns popularity from DNS records: a domain label is popular when at
    /// least `threshold.required(total distinct clients)` distinct clients
    /// queried names under it. `"None"` is never popular.
    /// Domains are split by `rules`, as the words will be.
    pub fn learn<'a, I>(records: I, threshold: PopularityThreshold, rules: DomainRules) -> Self
    where
        I: IntoIterator<Item = &'a DnsRecord>,
    {
        Self::learn_from_pairs(records.into_iter().filter(|r| !r.qname.is_empty()).map(|r| (r.client_ip, r.qname.as_str())), threshold, rules)
    }

    /// As [`DomainPopularity::learn`], from (client, query name) pairs.
    pub fn learn_from_pairs<'a, I>(pairs: I, threshold: PopularityThreshold, rules: DomainRules) -> Self
    where
        I: IntoIterator<Item = (IpAddr, &'a str)>,
    {
        let mut clients: HashSet<IpAddr> = HashSet::new();
        let mut by_domain: HashMap<String, HashSet<IpAddr>> = HashMap::new();
        for (client, name) in pairs {
            clients.insert(client);
            let parts = rules.parse(name.strip_suffix('.').unwrap_or(name));
            if parts.domain != NONE {
                by_domain.entry(parts.domain).or_default().insert(client);
            }
        }
        let need = threshold.required(clients.len());
        let labels = by_domain.into_iter().filter(|(_, c)| c.len() >= need).map(|(d, _)| d).collect();
        DomainPopularity { labels }
    }

    /// The popular labels, sorted (for saving them with a model).
    pub fn labels(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether a domain label is popular.
    pub fn contains(&self, domain: &str) -> bool {
        self.labels.contains(domain)
    }

    /// Number of popular labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no label is popular.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Spot's top-domain class of a domain label: 2 for the user's own domain
    /// (when `user_domain` is non-empty), 1 for a popular one, else 0.
    pub fn class(&self, domain: &str, user_domain: &str) -> u8 {
        if !user_domain.is_empty() && domain == user_domain {
            2
        } else if self.contains(domain) {
            1
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> (String, String, usize) {
        let d = parse_domain(name);
        (d.domain, d.subdomain, d.num_labels)
    }

    #[test]
    fn country_code_set_has_254_entries() {
        let n = COUNTRY_CODES.split(' ').count() + 1; // + the empty string
        assert_eq!(n, 254);
        assert!(is_country_code(""));
        assert!(is_country_code("krd"));
        assert!(is_country_code("uk"));
        assert!(!is_country_code("com"));
        assert!(!is_country_code("info"));
    }

    #[test]
    fn reference_parsing_examples() {
        assert_eq!(p("abcdefg.apache.com"), ("apache".into(), "abcdefg".into(), 3));
        assert_eq!(p("it.intel.com"), ("intel".into(), "it".into(), 3));
        // co is not a generic TLD, so it becomes the domain.
        assert_eq!(p("www.google.co.uk"), ("co".into(), "www.google".into(), 4));
        // .info is in neither list.
        assert_eq!(p("x.example.info"), (NONE.into(), NONE.into(), 3));
        // Reverse lookups are excluded.
        assert_eq!(p("4.3.2.1.in-addr.arpa"), (NONE.into(), NONE.into(), 6));
        // A single label is not parseable.
        assert_eq!(p("localhost"), (NONE.into(), NONE.into(), 1));
    }

    #[test]
    fn parsing_edge_cases() {
        // Only a country code and a TLD: nothing is left.
        assert_eq!(p("com.uk"), (NONE.into(), NONE.into(), 2));
        assert_eq!(p("google.com"), ("google".into(), NONE.into(), 2));
        // Java split drops the trailing empty label of a rooted name.
        assert_eq!(p("a.google.com."), ("google".into(), "a".into(), 3));
        assert_eq!(p(""), (NONE.into(), NONE.into(), 1));
        // uk stripped, then com stripped.
        assert_eq!(p("news.bbc.com.uk"), ("bbc".into(), "news".into(), 4));
    }

    fn o(name: &str) -> (String, String, usize) {
        let d = DomainRules::Osprey.parse(name);
        (d.domain, d.subdomain, d.num_labels)
    }

    #[test]
    fn osprey_rules_fix_spots_parsing_quirks() {
        // Spot's examples that already parse keep their parts.
        assert_eq!(o("abcdefg.apache.com"), ("apache".into(), "abcdefg".into(), 3));
        assert_eq!(o("google.com"), ("google".into(), NONE.into(), 2));
        assert_eq!(o("a.google.com."), ("google".into(), "a".into(), 3));
        assert_eq!(o("news.bbc.com.uk"), ("bbc".into(), "news".into(), 4));
        // Any last label is a TLD: new gTLDs and private ones are measured.
        assert_eq!(o("x.example.info"), ("example".into(), "x".into(), 3));
        assert_eq!(o("laegpumiplh.pirate.sea"), ("pirate".into(), "laegpumiplh".into(), 3));
        assert_eq!(o("a.b.t.exfil-tunnel.test"), ("exfil-tunnel".into(), "a.b.t".into(), 5));
        // A registry label under a country code goes with it.
        assert_eq!(o("www.google.co.uk"), ("google".into(), "www".into(), 4));
        assert_eq!(o("shop.example.com.au"), ("example".into(), "shop".into(), 4));
        // ...but not under a generic TLD, and not when nothing is left.
        assert_eq!(o("www.co.com"), ("co".into(), "www".into(), 3));
        assert_eq!(o("co.uk"), ("co".into(), NONE.into(), 2));
        // Case does not matter.
        assert_eq!(o("WwW.ExAmPlE.CoM"), ("example".into(), "www".into(), 3));
        // Still nothing to split: reverse lookups, single labels, empty labels.
        assert_eq!(o("4.3.2.1.in-addr.arpa"), (NONE.into(), NONE.into(), 6));
        assert_eq!(o("b.a.ip6.arpa"), (NONE.into(), NONE.into(), 4));
        assert_eq!(o("localhost"), (NONE.into(), NONE.into(), 1));
        assert_eq!(o(""), (NONE.into(), NONE.into(), 1));
        assert_eq!(o("a..com"), (NONE.into(), NONE.into(), 3));
        assert_eq!(DomainRules::Spot.parse("x.example.info"), parse_domain("x.example.info"));
        for r in [DomainRules::Spot, DomainRules::Osprey] {
            assert_eq!(DomainRules::from_name(r.as_str()), Some(r));
        }
        assert_eq!(DomainRules::from_name("psl"), None);
    }

    #[test]
    fn subdomain_measures() {
        let d = parse_domain("abcdefg.apache.com");
        assert_eq!(d.subdomain_len(), 7);
        assert!((d.subdomain_entropy() - 2.807354922057604).abs() < 1e-12);
        let none = parse_domain("apache.com");
        assert_eq!(none.subdomain_len(), 0);
        assert_eq!(none.subdomain_entropy(), 0.0);
    }

    #[test]
    fn rank_csv_keeps_first_label() {
        let csv = "rank,domain\n1,google.com\n2,bbc.co.uk\n\n3,Example.org\n";
        let pop = DomainPopularity::from_rank_csv(csv.as_bytes()).expect("parses");
        assert!(pop.contains("google"));
        assert!(pop.contains("bbc"));
        assert!(pop.contains("example"));
        assert_eq!(pop.len(), 3);
        assert_eq!(pop.class("google", "intel"), 1);
        assert_eq!(pop.class("intel", "intel"), 2);
        assert_eq!(pop.class("intel", ""), 0);
        let bad = DomainPopularity::from_rank_csv("1,a.com\nnonsense\n".as_bytes());
        assert!(matches!(bad, Err(PopularityError::BadLine { line: 2, .. })));
    }

    #[test]
    fn learned_popularity_counts_distinct_clients() {
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        let mut pairs = Vec::new();
        for i in 0..5 {
            pairs.push((ip(i), "www.google.com"));
            pairs.push((ip(i), "mail.google.com"));
        }
        // One client hammering a tunnel domain many times stays unpopular.
        for _ in 0..100 {
            pairs.push((ip(9), "x1.tunnel.com"));
        }
        pairs.push((ip(1), "a.rare.net"));
        pairs.push((ip(2), "b.rare.net"));
        pairs.push((ip(1), "1.0.0.10.in-addr.arpa"));
        let pop = DomainPopularity::learn_from_pairs(pairs.clone(), PopularityThreshold::default(), DomainRules::Spot);
        assert!(pop.contains("google"));
        assert!(!pop.contains("tunnel"));
        assert!(!pop.contains("rare"));
        assert!(!pop.contains(NONE));
        let loose = DomainPopularity::learn_from_pairs(pairs, PopularityThreshold { min_clients: 2, min_fraction: 0.0 }, DomainRules::Spot);
        assert!(loose.contains("rare"));
    }

    #[test]
    fn threshold_scales_with_clients() {
        let t = PopularityThreshold::default();
        assert_eq!(t.required(10), 3);
        assert_eq!(t.required(1000), 10);
        assert_eq!(t.required(1001), 11);
    }
}
