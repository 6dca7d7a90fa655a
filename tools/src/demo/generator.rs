//! A synthetic day of office traffic with injected anomalies, written as an
//! Ethernet pcap: the input of `osprey demo`.
//!
//! The day is built to look like what a SPAN port on an office core switch
//! would record, so that a Spot-style topic model (words from flow and DNS
//! features, one document per IP) has regular behaviour to learn and a few
//! irregular things to find:
//!
//! - **Network.** Internal hosts live in 10.20.0.0/16: six servers on VLAN 20
//!   (two AD/DNS resolvers that also serve NTP, a file server, a mail server, an
//!   HTTP proxy, a monitoring box) and workstations, untagged. A frame is tagged
//!   when either end is a server, so both directions of a flow share one VLAN.
//!   External hosts use the documentation ranges 198.18.0.0/15, 203.0.113.0/24
//!   and 2001:db8::/32; names are invented. The capture is never sent anywhere.
//! - **Benign traffic.** Each workstation has a profile (arrival around 8:30,
//!   departure around 17:30, a lunch break, an activity level, whether it stays
//!   on overnight, whether it browses through the proxy, whether it has IPv6).
//!   While its user is in, it browses (DNS through the internal resolvers, which
//!   forward cache misses to two external resolvers; TLS 1.3 handshakes with SNI;
//!   request/response transfers with slow start and delayed ACKs; FIN or RST
//!   close), keeps an IMAPS connection to the mail server, sends mail (the mail
//!   server looks up MX records and relays over SMTP+STARTTLS), works on the file
//!   server (SMB3, encrypted), syncs NTP. Machines left on overnight fetch
//!   updates and telemetry. The monitoring box pings everything; the mail server
//!   receives mail from outside (PTR, SPF/DMARC TXT lookups, the odd DNS-over-TCP
//!   retry after a truncated answer). Site popularity is Zipf-like over ~300 names.
//! - **Anomalies** ([`GroundTruth::anomalies`]): DNS tunnelling at night, a SYN
//!   port scan, all-day beaconing to a rare IP on port 8443, a 250 MB upload at
//!   03:00, and a burst of DGA lookups, mostly NXDOMAIN. To keep the packet
//!   count small the upload travels in 64 KB TSO-sized segments, as a capture
//!   on the sending host would show them (a SPAN port would see 1500-byte ones).
//!
//! **Days.** [`DemoConfig::day`] picks a day of the same office (same hosts,
//! same habits, same compromised machines; new events), and
//! [`DemoConfig::anomalies`] can turn the injections off, so a clean baseline
//! day can be generated to train on before scoring a day with anomalies.
//!
//! Volume is kept small on purpose (about half a million packets for the
//! default day): a real office would produce far more. Bulk TCP payloads are
//! *sliced* like a packet broker does: a data segment of more than
//! [`SLICE_MIN`] bytes keeps its headers and the first [`SLICE_KEEP`] payload
//! bytes, while the pcap record's original length (and the IP total length)
//! stays the real size, so flow byte counts are unaffected. DNS, NTP, ICMP,
//! TLS hellos and plaintext protocol headers are captured whole.
//!
//! Generation is deterministic: the same [`DemoConfig`] gives byte-identical
//! output (on the same platform; the float maths uses the platform's `ln`/`exp`).
//! Every job (a browsing session, a ping, one tunnel query...) draws from its own
//! random stream, and packets are written in timestamp order through a heap
//! that is flushed up to the start time of the next job.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use osprey_capture::craft::{
    DnsBuilder, DnsHeader, Icmp, Ipv4, Ipv6, Mac, Name, PacketBuilder, PcapOptions, PcapWriter, RData, Tcp, Udp, checksum_add, checksum_fold,
    dns_class, dns_rcode, dns_type, linktype, tcp_flags,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Configuration and ground truth
// ---------------------------------------------------------------------------

/// 2026-11-24T00:00:00Z in ns since the epoch.
pub const DEFAULT_START_NS: i64 = 1_795_478_400 * SEC;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DemoConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Start of the first day, ns since the epoch (default 2026-11-24T00:00:00Z).
    pub start_ns: i64,
    /// Which day of the same office to generate (0 = the first, starting at
    /// `start_ns`). The network, the hosts and the people's habits (who
    /// stays on overnight, who browses through the proxy, how active each
    /// user is, which machines are compromised) are the same every day; the
    /// day's events (arrivals, sessions, lookups) are drawn anew.
    pub day: u32,
    /// Inject the anomalies. Off: a clean day of the same office, e.g. a
    /// baseline to train on before scoring a day with anomalies.
    pub anomalies: bool,
    /// Internal hosts, servers included (default 150; at least 16 are used).
    pub hosts: usize,
    /// Multiplies the benign volume (1.0: about half a million packets).
    pub scale: f64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { seed: 42, start_ns: DEFAULT_START_NS, day: 0, hosts: 150, scale: 1.0, anomalies: true }
    }
}

/// One injected anomaly and what was written for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Short identifier (`dns_tunnel`, `port_scan`, `beaconing`, `exfil_upload`, `dga`).
    pub name: String,
    /// One sentence on what happened.
    pub description: String,
    /// The record kind it should stand out in: `flow` or `dns`.
    pub kind: String,
    /// Addresses specific to the anomaly: the internal culprit first, then
    /// rare external peers. Records touching these are the anomaly's.
    pub ips: Vec<String>,
    /// Shared hosts that also carried it (resolvers, scanned servers); they
    /// have plenty of benign traffic too.
    pub shared_ips: Vec<String>,
    /// Domain names involved (the tunnel's base domain, the DGA names...).
    pub domains: Vec<String>,
    /// Server ports involved (for the scan: every probed port).
    pub ports: Vec<u16>,
    /// First packet, ns since the epoch.
    pub start_ns: i64,
    /// Last packet, ns since the epoch.
    pub end_ns: i64,
    /// Packets written for it.
    pub packets: u64,
    /// IP-layer bytes written for it.
    pub ip_bytes: u64,
    /// Flow records the flow table should produce for it (estimated with the
    /// documented timeouts, see [`GroundTruth::total_flows`]).
    pub flows: u64,
    /// DNS messages written for it.
    pub dns_messages: u64,
}

/// Everything `generate` wrote, and where the anomalies are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The configuration used.
    pub config: DemoConfig,
    /// Internal hosts actually generated (servers + workstations).
    pub hosts: usize,
    /// First packet, ns since the epoch.
    pub first_ns: i64,
    /// Last packet, ns since the epoch.
    pub last_ns: i64,
    /// Packets written.
    pub total_packets: u64,
    /// Captured bytes (pcap record data, after slicing).
    pub total_captured_bytes: u64,
    /// IP-layer bytes (sum of IP total lengths; what flow records count).
    pub total_ip_bytes: u64,
    /// Flow records expected from ingest: estimated by replaying the packets
    /// through the timeouts of `docs/flow-semantics.md` (idle 60 s, active
    /// 300 s, 2 s linger after FIN/RST). Approximate: the estimate ignores
    /// table capacity and other details.
    pub total_flows: u64,
    /// DNS messages written (queries and responses, UDP and TCP).
    pub total_dns_messages: u64,
    /// The injected anomalies.
    pub anomalies: Vec<Anomaly>,
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// One generated day, in ns.
pub const DAY_NS: i64 = DAY;

/// Bulk data segments longer than this are sliced.
pub const SLICE_MIN: usize = 160;
/// Payload bytes a sliced segment keeps.
pub const SLICE_KEEP: usize = 64;

const SERVER_VLAN: u16 = 20;
const ROUTER_MAC: Mac = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x01];
const CORP: &str = "corp.example-corp.test";
const MAIL_DOMAIN: &str = "example-corp.test";

// Server indices (the first hosts).
const RES1: usize = 0;
const RES2: usize = 1;
const FS: usize = 2;
const MAIL: usize = 3;
const PROXY: usize = 4;
const MON: usize = 5;
const N_SERVERS: usize = 6;
const SERVER_NAMES: [&str; N_SERVERS] = ["dc1", "dc2", "fs01", "mail", "proxy", "mon01"];
const SERVER_OCTETS: [u8; N_SERVERS] = [53, 54, 10, 25, 30, 50];

const EXT_RESOLVERS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 53, 1), Ipv4Addr::new(198, 18, 53, 2)];
const NTP_POOL: [Ipv4Addr; 4] =
    [Ipv4Addr::new(198, 18, 123, 1), Ipv4Addr::new(198, 18, 123, 2), Ipv4Addr::new(198, 18, 123, 3), Ipv4Addr::new(198, 18, 123, 4)];
const BEACON_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
const BEACON_PORT: u16 = 8443;
const EXFIL_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 200);
const EXFIL_DOMAIN: &str = "bulk.filedrop-share.test";
const TUNNEL_DOMAIN: &str = "t.exfil-tunnel.test";

// Benign volume knobs (per workstation, before `scale`).
const BROWSE_PER_HOUR: f64 = 1.4;
const FILE_PER_HOUR: f64 = 0.3;
const MAIL_FETCH_PER_DAY: f64 = 10.0;
const MAIL_SEND_PER_DAY: f64 = 2.0;
const IMAP_IDLE_EVERY: i64 = 9 * MIN + 30 * SEC;
const WS_NTP_EVERY: i64 = 2 * HOUR;
const SERVER_NTP_EVERY: i64 = 1024 * SEC;
const PING_SERVER_EVERY: i64 = 60 * SEC;
const PING_WS_EVERY: i64 = 30 * MIN;
const INBOUND_MAIL_PER_HOUR: (f64, f64) = (25.0, 5.0); // business hours, otherwise

// Flow estimator timeouts (docs/flow-semantics.md).
const FLOW_IDLE: i64 = 60 * SEC;
const FLOW_ACTIVE: i64 = 300 * SEC;
const FLOW_LINGER: i64 = 2 * SEC;

// Anomaly tags (index into the stats table; 0 is benign).
const TAG_TUNNEL: u8 = 1;
const TAG_SCAN: u8 = 2;
const TAG_BEACON: u8 = 3;
const TAG_EXFIL: u8 = 4;
const TAG_DGA: u8 = 5;
const N_TAGS: usize = 6;

// ---------------------------------------------------------------------------
// Random numbers
// ---------------------------------------------------------------------------

/// SplitMix64 step (seeding, hashing).
fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256** with a few distributions.
#[derive(Debug, Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng { s: [splitmix(&mut x), splitmix(&mut x), splitmix(&mut x), splitmix(&mut x)] }
    }

    fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + ((u128::from(self.next_u64()) * (hi - lo) as u128) >> 64) as i64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Exponential duration with the given mean, in ns.
    fn exp_ns(&mut self, mean: i64) -> i64 {
        self.exp(mean as f64) as i64
    }

    /// Log-normal with the given median.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Log-normal size, clamped.
    fn size(&mut self, median: f64, sigma: f64, lo: usize, hi: usize) -> usize {
        (self.lognormal(median, sigma) as usize).clamp(lo, hi)
    }

    /// Geometric count >= 1 with the given mean.
    fn count(&mut self, mean: f64, max: usize) -> usize {
        let mut n = 1;
        let p = 1.0 / mean.max(1.0);
        while n < max && !self.chance(p) {
            n += 1;
        }
        n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// FNV-1a, for deriving stable addresses from names.
fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Cumulative weights for sampling ranks with a Zipf-like law.
fn zipf_table(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|i| {
            acc += 1.0 / ((i + 1) as f64).powf(s);
            acc
        })
        .collect()
}

fn zipf_pick(rng: &mut Rng, table: &[f64]) -> usize {
    let total = table.last().copied().unwrap_or(1.0);
    let x = rng.f64() * total;
    table.partition_point(|&c| c <= x).min(table.len().saturating_sub(1))
}

// ---------------------------------------------------------------------------
// The name catalog
// ---------------------------------------------------------------------------

/// Site flags.
const F_CDN: u8 = 1; // names are CNAMEs into a CDN
const F_V6: u8 = 2; // has AAAA records
const F_HTTP: u8 = 4; // plain HTTP on port 80
const F_BIG: u8 = 8; // large responses (video, downloads, cloud storage)
const F_BG: u8 = 16; // machine traffic (updates, telemetry), not browsed
const F_3P: u8 = 32; // embedded third party (ads, fonts, analytics)
const F_ALT: u8 = 64; // hosted in 203.0.113.0/24

/// Invented sites, most popular first: (domain, host labels (`@` = the bare
/// domain; the first is the main host), flags). About 300 names in all.
const SITES: &[(&str, &[&str], u8)] = &[
    ("searchly.com", &["www", "ssl-static", "suggest", "images", "apis", "accounts"], F_CDN | F_V6),
    ("officesuite-online.com", &["www", "login", "docs", "outlook", "cdn", "teams", "files"], F_CDN | F_V6),
    ("mailbox-cloud.com", &["mail", "login", "static", "attachments", "contacts"], F_V6),
    ("vidtube.com", &["www", "i", "video-edge", "api", "s", "yt3"], F_CDN | F_V6 | F_BIG),
    ("friendcircle.com", &["www", "static", "graph", "chat", "media", "edge-chat"], F_CDN | F_V6),
    ("workchat.io", &["app", "api", "files", "wss-edge", "avatars"], F_CDN),
    ("newsdaily-world.com", &["www", "static", "img", "api", "comments"], F_CDN),
    ("wikiknow.org", &["en", "upload", "www", "meta", "login"], F_V6),
    ("codehost.dev", &["@", "api", "raw", "avatars", "objects", "gist"], F_CDN),
    ("shopmart.com", &["www", "images", "cdn", "api", "checkout"], F_CDN | F_V6),
    ("login-sso.com", &["login", "account", "static", "device"], F_CDN | F_V6),
    ("cloudstorage-box.com", &["www", "upload", "dl", "api", "previews"], F_BIG),
    ("meetvideo.com", &["www", "api", "web", "rtc", "media1", "media2"], F_BIG),
    ("weathernow.com", &["www", "api", "tiles", "radar"], F_CDN),
    ("mapsy.com", &["www", "tiles", "api", "geo"], F_CDN | F_V6),
    ("techforum.dev", &["www", "avatars", "api", "cdn"], 0),
    ("crmcloud.com", &["login", "na1", "static", "api"], 0),
    ("hrportal-saas.com", &["example-corp", "api", "static"], 0),
    ("ticketdesk.io", &["example-corp", "api", "assets"], 0),
    ("stocktick.com", &["www", "quotes", "charts", "news"], F_CDN),
    ("socialbird.com", &["www", "api", "pbs", "video", "abs"], F_CDN | F_V6),
    ("proflink.com", &["www", "static", "media", "realtime"], F_CDN),
    ("musicstream.net", &["www", "audio-fa", "api", "i", "spclient"], F_BIG),
    ("streamflix.com", &["www", "assets", "api", "edge1", "edge2"], F_CDN | F_BIG),
    ("translate-it.com", &["www", "api"], 0),
    ("devdocs-hub.com", &["www", "cdn", "search"], F_CDN),
    ("packagerepo.org", &["www", "files", "api"], F_CDN | F_BIG),
    ("bankofexample.com", &["www", "secure", "static"], 0),
    ("travelbook.com", &["www", "img", "api"], F_CDN),
    ("jobsnet.com", &["www", "media", "api"], 0),
    ("photoshare.net", &["www", "img", "cdn"], F_CDN | F_BIG),
    ("qna-site.com", &["www", "cdn", "api"], F_CDN),
    ("imagehost.net", &["i", "www"], F_CDN),
    ("sportscore.com", &["www", "api", "img", "live"], 0),
    ("citynews.net", &["www", "img"], F_ALT),
    ("expense-app.com", &["www", "api"], 0),
    ("payroll-online.com", &["www", "secure"], 0),
    ("calendar-sync.com", &["api", "www"], 0),
    ("docsign.com", &["www", "app", "api"], 0),
    ("wikicorp-saas.com", &["example-corp", "static"], 0),
    ("pdfconvert.com", &["www", "api"], F_ALT),
    ("dictionary-online.com", &["www"], 0),
    ("blogplatform.com", &["www", "static", "stats"], 0),
    ("podcast-hub.com", &["www", "feeds", "media"], F_BIG),
    ("e-learn.org", &["www", "static", "video"], F_ALT),
    ("recipebox.com", &["www", "img"], F_HTTP | F_ALT),
    ("forum-hobby.net", &["www", "img"], F_HTTP),
    ("taxfile.com", &["www", "secure"], 0),
    ("citytransit.org", &["www", "realtime"], F_HTTP),
    ("localradio.net", &["www", "stream"], F_HTTP),
    ("captcha-service.com", &["www", "api"], F_3P),
    ("adnetwork-x.com", &["ads", "pixel", "track", "static"], F_3P | F_CDN),
    ("analytics-y.com", &["collect", "www", "tag"], F_3P),
    ("fontserve.com", &["fonts", "static"], F_3P | F_CDN),
    ("jslib-cdn.com", &["cdn", "ajax"], F_3P | F_CDN),
    ("emoji-cdn.net", &["cdn"], F_3P | F_CDN),
    ("os-vendor-update.com", &["update", "download", "telemetry", "settings", "ctldl"], F_BG | F_CDN | F_BIG),
    ("antivirus-cloud.com", &["defs", "telemetry", "api"], F_BG | F_BIG),
    ("browser-vendor.com", &["update", "safebrowsing", "sync"], F_BG | F_CDN),
    ("updates-office.com", &["officecdn", "config"], F_BG | F_CDN),
    ("certauthority.net", &["ocsp", "crl"], F_BG | F_HTTP),
];

/// Mail partner domains (MX lookups, inbound senders).
const PARTNERS: &[&str] = &[
    "partner-logistics.com",
    "supplier-parts.net",
    "lawfirm-advisors.com",
    "client-holdings.com",
    "accounting-group.net",
    "marketing-agency.io",
    "univ-research.org",
    "city-council.org",
    "mailbox-cloud.com",
    "officesuite-online.com",
];

/// One resolvable external name.
#[derive(Debug, Clone)]
struct Domain {
    name: String,
    /// CNAME targets, in order (the last one owns the addresses).
    chain: Vec<String>,
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    ttl: u32,
    flags: u8,
    /// Round trip from the capture point to the servers.
    rtt: i64,
}

#[derive(Debug)]
struct Site {
    /// Indices into the domain list, main host first.
    hosts: Vec<usize>,
    /// Zipf table over `hosts`.
    host_zipf: Vec<f64>,
    flags: u8,
}

#[derive(Debug)]
struct Catalog {
    domains: Vec<Domain>,
    sites: Vec<Site>,
    /// Sites users browse (not background or third party), by popularity.
    browsable: Vec<usize>,
    browse_zipf: Vec<f64>,
    third_party: Vec<usize>,
}

fn site_v4(h: u64, alt: bool) -> Ipv4Addr {
    if alt {
        return Ipv4Addr::new(203, 0, 113, 10 + (h % 50) as u8);
    }
    // 198.18.x.y with x in 1..=250, avoiding the blocks used for resolvers (53) and NTP (123).
    let mut x = 1 + (h % 250) as u8;
    if x == 53 || x == 123 {
        x += 1;
    }
    Ipv4Addr::new(198, 18, x, 1 + ((h >> 8) % 250) as u8)
}

impl Catalog {
    fn build() -> Catalog {
        let mut domains = Vec::new();
        let mut sites = Vec::new();
        for (si, (site, hosts, flags)) in SITES.iter().enumerate() {
            let sh = fnv(site.as_bytes());
            let mut idx = Vec::new();
            for host in hosts.iter() {
                let name = if *host == "@" { (*site).to_string() } else { format!("{host}.{site}") };
                let h = fnv(name.as_bytes());
                let mut chain = Vec::new();
                let (mut a, rtt);
                if flags & F_CDN != 0 {
                    chain.push(format!("{name}.cdn-edge.net"));
                    if h.is_multiple_of(3) {
                        chain.push(format!("e{}.a.cdn-edge.net", h % 9000 + 100));
                    }
                    // Shared CDN pool: many names, few addresses.
                    let base = 200 + (h % 4) as u8;
                    a = vec![Ipv4Addr::new(198, 19, base, 1 + ((h >> 8) % 60) as u8)];
                    a.push(Ipv4Addr::new(198, 19, base, 1 + ((h >> 16) % 60) as u8));
                    rtt = 4 * MS + (h % 11) as i64 * MS;
                } else {
                    // Hosts of a site share a /24 (or the alt range).
                    let v4 = site_v4(sh ^ (h % 3), flags & F_ALT != 0);
                    a = vec![v4];
                    if h.is_multiple_of(4) {
                        let o = v4.octets();
                        a.push(Ipv4Addr::new(o[0], o[1], o[2], o[3].wrapping_add(1).max(1)));
                    }
                    rtt = 12 * MS + (sh % 110) as i64 * MS;
                }
                let aaaa = if flags & F_V6 != 0 {
                    vec![Ipv6Addr::new(0x2001, 0xdb8, 0x5000 + (si as u16), (h >> 16) as u16 & 0xff, 0, 0, 0, 1 + (h % 200) as u16)]
                } else {
                    Vec::new()
                };
                let ttl = if flags & F_CDN != 0 { [20, 30, 60][(h % 3) as usize] } else { [300, 600, 1800, 3600][(h % 4) as usize] };
                idx.push(domains.len());
                domains.push(Domain { name, chain, a, aaaa, ttl, flags: *flags, rtt });
            }
            let host_zipf = zipf_table(idx.len(), 1.2);
            sites.push(Site { hosts: idx, host_zipf, flags: *flags });
        }
        let browsable: Vec<usize> = (0..sites.len()).filter(|&i| sites[i].flags & (F_BG | F_3P) == 0).collect();
        let third_party = (0..sites.len()).filter(|&i| sites[i].flags & F_3P != 0).collect();
        let browse_zipf = zipf_table(browsable.len(), 1.0);
        Catalog { domains, sites, browsable, browse_zipf, third_party }
    }

    fn site_domain(&self, site_name: &str, host: usize) -> usize {
        let si = SITES.iter().position(|(s, _, _)| *s == site_name).unwrap_or(0);
        let hosts = &self.sites[si].hosts;
        hosts[host.min(hosts.len() - 1)]
    }
}

// ---------------------------------------------------------------------------
// Hosts and endpoints
// ---------------------------------------------------------------------------

/// An internal host.
#[derive(Debug, Clone)]
struct Host {
    name: String,
    ip4: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    mac: Mac,
    server: bool,
    /// One-way delay between the capture point and the host.
    delay: i64,
}

impl Host {
    fn fqdn(&self) -> String {
        format!("{}.{CORP}", self.name)
    }

    fn node(&self, v6: bool) -> Node {
        let ip = match (v6, self.ip6) {
            (true, Some(a)) => IpAddr::V6(a),
            _ => IpAddr::V4(self.ip4),
        };
        // Windows workstations start at TTL 128, the Linux servers at 64.
        Node { ip, mac: self.mac, server: self.server, ttl: if self.server { 64 } else { 128 }, delay: self.delay }
    }
}

/// One end of a conversation as the capture point sees it.
#[derive(Debug, Clone, Copy)]
struct Node {
    ip: IpAddr,
    mac: Mac,
    /// On the server VLAN.
    server: bool,
    /// TTL / hop limit of its packets at the capture point.
    ttl: u8,
    /// One-way delay between the capture point and this node.
    delay: i64,
}

/// An external node; `rtt` is the round trip from the capture point (0: derive one).
fn ext_node(ip: IpAddr, rtt: i64) -> Node {
    let h = match ip {
        IpAddr::V4(a) => fnv(&a.octets()),
        IpAddr::V6(a) => fnv(&a.octets()),
    };
    let rtt = if rtt > 0 { rtt } else { 10 * MS + (h % 110) as i64 * MS };
    let initial = [64u8, 64, 128, 255][(h % 4) as usize];
    Node { ip, mac: ROUTER_MAC, server: false, ttl: initial - 6 - (h >> 8) as u8 % 14, delay: rtt / 2 }
}

/// Address bytes as they appear in the IP header.
fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn rev_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

/// The registrable zone of a name (its last two labels).
fn zone_of(name: &str) -> String {
    let parts: Vec<&str> = name.trim_end_matches('.').rsplitn(3, '.').collect();
    match parts.as_slice() {
        [tld, sld, ..] => format!("{sld}.{tld}"),
        _ => name.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Packet sink: ordering, writing, counting
// ---------------------------------------------------------------------------

/// What the sink needs to know about a packet besides its bytes.
#[derive(Debug, Clone, Copy)]
struct Meta {
    ts: i64,
    orig_len: u32,
    ip_len: u32,
    tag: u8,
    dns: u8,
    proto: u8,
    flags: u8,
    vlan: u16,
    src: [u8; 16],
    sport: u16,
    dst: [u8; 16],
    dport: u16,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    packets: u64,
    cap_bytes: u64,
    ip_bytes: u64,
    flows: u64,
    dns: u64,
    first: i64,
    last: i64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { packets: 0, cap_bytes: 0, ip_bytes: 0, flows: 0, dns: 0, first: i64::MAX, last: i64::MIN }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    vlan: u16,
    proto: u8,
    a: [u8; 16],
    ap: u16,
    b: [u8; 16],
    bp: u16,
}

#[derive(Debug, Clone, Copy)]
struct FlowState {
    start: i64,
    last: i64,
    closed: Option<i64>,
    fin: u8,
}

/// Replays packets through the flow timeouts to count the records ingest
/// should produce (the generator's own estimate, independent of `flow.rs`).
#[derive(Debug, Default)]
struct FlowEstimator {
    map: HashMap<FlowKey, FlowState>,
    next_purge: i64,
}

impl FlowEstimator {
    /// Accounts one packet; true when it starts a new flow record.
    fn observe(&mut self, m: &Meta) -> bool {
        let ports = matches!(m.proto, 6 | 17 | 132 | 136);
        let (sp, dp) = if ports { (m.sport, m.dport) } else { (0, 0) };
        let src_is_a = (m.src, sp) <= (m.dst, dp);
        let key = if src_is_a {
            FlowKey { vlan: m.vlan, proto: m.proto, a: m.src, ap: sp, b: m.dst, bp: dp }
        } else {
            FlowKey { vlan: m.vlan, proto: m.proto, a: m.dst, ap: dp, b: m.src, bp: sp }
        };
        let tcp = m.proto == 6;
        let pure_syn = tcp && m.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN;
        let fresh = FlowState { start: m.ts, last: m.ts, closed: None, fin: 0 };
        let mut new = false;
        let st = self.map.entry(key).or_insert_with(|| {
            new = true;
            fresh
        });
        if !new {
            let expired =
                m.ts - st.last > FLOW_IDLE || m.ts - st.start >= FLOW_ACTIVE || st.closed.is_some_and(|c| pure_syn || m.ts - c > FLOW_LINGER);
            if expired {
                *st = fresh;
                new = true;
            } else {
                st.last = m.ts;
            }
        }
        if tcp {
            if m.flags & tcp_flags::FIN != 0 {
                st.fin |= if src_is_a { 1 } else { 2 };
            }
            if (m.flags & tcp_flags::RST != 0 || st.fin == 3) && st.closed.is_none() {
                st.closed = Some(m.ts);
            }
        }
        if m.ts >= self.next_purge {
            // Forget flows that can no longer be continued, to keep the map small.
            let horizon = m.ts - FLOW_ACTIVE - FLOW_IDLE;
            self.map.retain(|_, s| s.last > horizon);
            self.next_purge = m.ts + 10 * MIN;
        }
        new
    }
}

/// Orders packets by time and writes them.
#[derive(Debug)]
struct Sink<W: Write> {
    pcap: PcapWriter<W>,
    heap: BinaryHeap<Reverse<(i64, u64, u32)>>,
    slots: Vec<(Meta, Vec<u8>)>,
    free: Vec<u32>,
    seq: u64,
    flows: FlowEstimator,
    stats: [Stats; N_TAGS],
}

impl<W: Write> Sink<W> {
    fn push(&mut self, meta: Meta, data: &[u8]) {
        self.seq += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                slot.0 = meta;
                slot.1.clear();
                slot.1.extend_from_slice(data);
                i
            }
            None => {
                self.slots.push((meta, data.to_vec()));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((meta.ts, self.seq, idx)));
    }

    /// Writes every queued packet with a timestamp <= `limit`.
    fn flush_until(&mut self, limit: i64) -> io::Result<()> {
        while let Some(&Reverse((ts, _, idx))) = self.heap.peek() {
            if ts > limit {
                break;
            }
            self.heap.pop();
            let (meta, data) = &self.slots[idx as usize];
            self.pcap.write_packet_with_orig_len(ts, data, meta.orig_len)?;
            let new_flow = self.flows.observe(meta);
            let s = &mut self.stats[usize::from(meta.tag)];
            s.packets += 1;
            s.cap_bytes += data.len() as u64;
            s.ip_bytes += u64::from(meta.ip_len);
            s.dns += u64::from(meta.dns);
            s.flows += u64::from(new_flow);
            s.first = s.first.min(ts);
            s.last = s.last.max(ts);
            self.free.push(idx);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// DNS answers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Rd {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ptr(String),
    Ns(String),
    Mx(u16, String),
    Txt(Vec<Vec<u8>>),
    Srv(u16, String),
    Null(Vec<u8>),
    /// SOA of the zone (fixed timers).
    Soa(String),
}

#[derive(Debug, Clone)]
struct Rr {
    name: String,
    ttl: u32,
    rd: Rd,
}

impl Rr {
    fn new(name: impl Into<String>, ttl: u32, rd: Rd) -> Rr {
        Rr { name: name.into(), ttl, rd }
    }
}

/// A response's content (the question is added when it is written).
#[derive(Debug, Clone, Default)]
struct Answer {
    rcode: u8,
    an: Vec<Rr>,
    ns: Vec<Rr>,
    ar: Vec<Rr>,
    /// Answered from the resolver's own zones.
    aa: bool,
    /// Too big for UDP: the forwarder's UDP answer is truncated and retried over TCP.
    big: bool,
}

impl Answer {
    fn nx(zone: &str) -> Answer {
        Answer { rcode: dns_rcode::NXDOMAIN, ns: vec![Rr::new(zone, 900, Rd::Soa(zone.to_string()))], ..Answer::default() }
    }

    fn nodata(zone: &str) -> Answer {
        Answer { ns: vec![Rr::new(zone, 900, Rd::Soa(zone.to_string()))], ..Answer::default() }
    }

    fn records(an: Vec<Rr>) -> Answer {
        Answer { an, ..Answer::default() }
    }

    /// How long a resolver may cache it.
    fn ttl(&self) -> u32 {
        self.an.iter().chain(&self.ns).map(|r| r.ttl).min().unwrap_or(300)
    }
}

/// Writes one DNS message into `buf` (appending).
#[expect(clippy::too_many_arguments, reason = "a DNS message has that many independent parts")]
fn write_dns(buf: &mut Vec<u8>, id: u16, qname: &str, qtype: u16, ans: Option<&Answer>, edns: bool, truncated: bool, tcp: bool) {
    let hdr = match ans {
        None => DnsHeader::query(id),
        Some(a) => DnsHeader { aa: a.aa, tc: truncated, ..DnsHeader::response(id, a.rcode) },
    };
    let mut b = if tcp { DnsBuilder::new_tcp(buf, hdr) } else { DnsBuilder::new(buf, hdr) };
    b = b.compress(true).question(qname, qtype, dns_class::IN);
    if let Some(a) = ans.filter(|_| !truncated) {
        for (section, rrs) in [(1, &a.an), (2, &a.ns), (3, &a.ar)] {
            for rr in rrs {
                b = add_rr(b, section, rr);
            }
        }
    }
    if edns {
        b = b.opt(1232, 0, 0, false, &[]);
    }
    b.finish();
}

fn add_rr<'b>(b: DnsBuilder<'b>, section: u8, rr: &Rr) -> DnsBuilder<'b> {
    use osprey_capture::craft::Section;
    let section = match section {
        1 => Section::Answer,
        2 => Section::Authority,
        _ => Section::Additional,
    };
    let name = Name::Text(&rr.name);
    let txt: Vec<&[u8]>;
    let soa_m;
    let soa_r;
    let data = match &rr.rd {
        Rd::A(a) => RData::A(*a),
        Rd::Aaaa(a) => RData::Aaaa(*a),
        Rd::Cname(n) => RData::Cname(Name::Text(n)),
        Rd::Ptr(n) => RData::Ptr(Name::Text(n)),
        Rd::Ns(n) => RData::Ns(Name::Text(n)),
        Rd::Mx(p, n) => RData::Mx { preference: *p, exchange: Name::Text(n) },
        Rd::Txt(parts) => {
            txt = parts.iter().map(Vec::as_slice).collect();
            RData::Txt(&txt)
        }
        Rd::Srv(port, target) => RData::Srv { priority: 0, weight: 100, port: *port, target: Name::Text(target) },
        Rd::Null(d) => RData::Null(d),
        Rd::Soa(zone) => {
            soa_m = format!("ns1.{zone}");
            soa_r = format!("hostmaster.{zone}");
            RData::Soa {
                mname: Name::Text(&soa_m),
                rname: Name::Text(&soa_r),
                serial: 2026112401,
                refresh: 7200,
                retry: 900,
                expire: 1_209_600,
                minimum: 900,
            }
        }
    };
    b.record(section, name, dns_class::IN, rr.ttl, data)
}

// ---------------------------------------------------------------------------
// Transport helpers
// ---------------------------------------------------------------------------

/// Transport header of one packet.
#[derive(Debug, Clone, Copy)]
enum L4 {
    /// `offload`: the checksum field holds only the pseudo-header sum, as a
    /// capture on a sender with checksum offload shows it.
    Tcp {
        sp: u16,
        dp: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        opts: TcpOpts,
        offload: bool,
    },
    Udp {
        sp: u16,
        dp: u16,
    },
    Icmp(Icmp),
    Icmp6(Icmp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpOpts {
    None,
    Syn,
    SynAck,
}

/// Windows-style SYN options: MSS, NOP, window scale 8, NOP, NOP, SACK permitted.
const SYN_OPTS_V4: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2];
const SYN_OPTS_V6: [u8; 12] = [2, 4, 0x05, 0xa0, 1, 3, 3, 8, 1, 1, 4, 2];
/// Linux-style SYN/ACK options: MSS, NOP, NOP, SACK permitted, NOP, window scale 7.
const SYNACK_OPTS_V4: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];
const SYNACK_OPTS_V6: [u8; 12] = [2, 4, 0x05, 0xa0, 1, 1, 4, 2, 1, 3, 3, 7];

/// How bulk payload bytes look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// TLS application-data records (each segment starts a record).
    Tls,
    /// NetBIOS session messages carrying encrypted SMB3 (transform header).
    Smb,
    /// Opaque bytes (HTTP bodies).
    Raw,
}

/// A byte stream one side sends: literal `head` bytes (captured whole), then
/// `body` bytes in a style (sliced when long).
#[derive(Debug, Clone)]
struct Src {
    head: Vec<u8>,
    style: Style,
    body: usize,
}

impl Src {
    fn head(head: Vec<u8>) -> Src {
        Src { head, style: Style::Raw, body: 0 }
    }

    fn body(style: Style, body: usize) -> Src {
        Src { head: Vec::new(), style, body }
    }
}

/// TCP segmentation knobs.
#[derive(Debug, Clone, Copy)]
struct Seg {
    /// Segment size (0: the path MSS).
    mss: usize,
    /// The receiver ACKs every this many segments.
    ack_every: usize,
    /// ACK the final segment even if it is an odd one (false when the
    /// receiver's reply carries the ACK).
    ack_last: bool,
    /// Initial and maximal congestion window, segments.
    cwnd: (usize, usize),
    /// Leave the checksum to the NIC (TSO super-segments).
    offload: bool,
}

const SEG_REQ: Seg = Seg { mss: 0, ack_every: 2, ack_last: false, cwnd: (10, 64), offload: false };
const SEG_RESP: Seg = Seg { mss: 0, ack_every: 2, ack_last: true, cwnd: (10, 64), offload: false };

/// An open TCP connection.
#[derive(Debug, Clone, Copy)]
struct Conn {
    c: Node,
    s: Node,
    cp: u16,
    sp: u16,
    cseq: u32,
    sseq: u32,
    /// Capture time of the last packet.
    t: i64,
    /// Whether the last packet came from the client.
    last_c: bool,
}

impl Conn {
    fn v6(&self) -> bool {
        self.c.ip.is_ipv6()
    }

    /// When `client` (or the server) can next be seen sending: at once if it
    /// sent the last packet, else after that packet reached it and it answered.
    fn turn(&self, client: bool, proc_ns: i64) -> i64 {
        if self.last_c == client {
            self.t + 15 * US
        } else {
            let n = if client { self.c } else { self.s };
            self.t + 2 * n.delay + proc_ns
        }
    }
}

fn ntp_ts(unix_ns: i64) -> [u8; 8] {
    let secs = (unix_ns.div_euclid(SEC) + 2_208_988_800) as u32;
    let frac = ((unix_ns.rem_euclid(SEC) as u128) << 32) / SEC as u128;
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&secs.to_be_bytes());
    b[4..].copy_from_slice(&(frac as u32).to_be_bytes());
    b
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const HEX: &[u8; 16] = b"0123456789abcdef";

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// A workstation's day.
#[derive(Debug)]
struct Ws {
    host: usize,
    present: bool,
    arrive: i64,
    leave: i64,
    always_on: bool,
    proxied: bool,
    v6: bool,
    /// Client DNS cache: name/type hash → expiry.
    cache: HashMap<u64, i64>,
    /// The mail client's IMAPS connection while the user is in.
    mail: Option<Conn>,
    /// The file server has looked up this host's PTR already.
    fs_known: bool,
}

impl Ws {
    fn is_on(&self, t: i64) -> bool {
        self.always_on || (self.present && t >= self.arrive && t < self.leave)
    }
}

#[derive(Debug, Clone, Copy)]
enum Job {
    Boot(usize),
    Leave(usize),
    Browse(usize),
    MailIdle(usize),
    MailFetch(usize),
    MailSend(usize),
    FileWork(usize),
    WsNtp(usize),
    Background(usize),
    PingWs(usize),
    PingServer(usize),
    ServerNtp(usize),
    InboundMail,
    MonitorDns,
    Tunnel,
    Scan,
    Beacon,
    Exfil,
    Dga,
}

impl Job {
    fn tag(self) -> u8 {
        match self {
            Job::Tunnel => TAG_TUNNEL,
            Job::Scan => TAG_SCAN,
            Job::Beacon => TAG_BEACON,
            Job::Exfil => TAG_EXFIL,
            Job::Dga => TAG_DGA,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sched {
    ts: i64,
    seq: u64,
    job: Job,
}

/// Where and when the anomalies happen.
#[derive(Debug, Default)]
struct Plan {
    tunnel_ws: usize,
    tunnel: (i64, i64),
    scan_ws: usize,
    scan_at: i64,
    scan_targets: Vec<usize>,
    scan_ports: Vec<u16>,
    beacon_ws: usize,
    exfil_ws: usize,
    exfil_at: i64,
    dga_ws: usize,
    dga_at: i64,
    /// DGA names and, for the few that resolve, their address.
    dga_names: Vec<(String, Option<Ipv4Addr>)>,
}

struct Gen<W: Write> {
    start: i64,
    scale: f64,
    cat: Catalog,
    hosts: Vec<Host>,
    ws: Vec<Ws>,
    plan: Plan,
    /// Resolver caches: (resolver, name, type) hash → expiry.
    res_cache: HashMap<u64, i64>,
    /// The proxy's own DNS cache.
    proxy_cache: HashMap<u64, i64>,
    sink: Sink<W>,
    /// The current job's random stream, tag and start.
    rng: Rng,
    tag: u8,
    floor: i64,
    scratch: Vec<u8>,
    pay: Vec<u8>,
    dns: Vec<u8>,
    pool: Vec<u8>,
    pool_pos: usize,
    ipid: u16,
    tunnel_seq: u32,
}

impl<W: Write> std::fmt::Debug for Gen<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gen").field("start", &self.start).field("hosts", &self.hosts.len()).finish_non_exhaustive()
    }
}

/// Generates the day described by `cfg` as an Ethernet pcap (nanosecond
/// timestamps, packets in timestamp order) into `out`, and returns what was
/// written. The writer is not flushed beyond what [`PcapWriter::into_inner`]
/// does; wrap files in a `BufWriter`.
pub fn generate<W: Write>(cfg: &DemoConfig, out: W) -> io::Result<GroundTruth> {
    if !(cfg.scale.is_finite() && cfg.scale > 0.0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "scale must be a positive number"));
    }
    let pcap = PcapWriter::with_options(out, PcapOptions { linktype: linktype::ETHERNET, ..PcapOptions::default() })?;
    let mut g = Gen::new(cfg, pcap);
    let jobs = g.schedule(cfg.seed, cfg.day, cfg.anomalies);
    let day_seed = cfg.seed ^ u64::from(cfg.day).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for s in &jobs {
        g.sink.flush_until(s.ts)?;
        g.rng = Rng::new(day_seed ^ s.seq.wrapping_mul(0xd1b5_4a32_d192_ed03));
        g.tag = s.job.tag();
        g.floor = s.ts;
        g.run(s.ts, s.job);
    }
    g.sink.flush_until(i64::MAX)?;
    let truth = g.truth(cfg);
    g.sink.pcap.into_inner()?;
    Ok(truth)
}

impl<W: Write> Gen<W> {
    fn new(cfg: &DemoConfig, pcap: PcapWriter<W>) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let n_hosts = cfg.hosts.max(16);
        let mut hosts = Vec::with_capacity(n_hosts);
        for i in 0..n_hosts {
            let server = i < N_SERVERS;
            let (name, ip4) = if server {
                (SERVER_NAMES[i].to_string(), Ipv4Addr::new(10, 20, 1, SERVER_OCTETS[i]))
            } else {
                let w = i - N_SERVERS;
                (format!("ws-{:04}", w + 1), Ipv4Addr::new(10, 20, 10 + (w / 250) as u8, 1 + (w % 250) as u8))
            };
            let o = ip4.octets();
            // Servers except the file and mail servers, and every ninth workstation, have IPv6.
            let ip6 = if (server && i != FS && i != MAIL) || (!server && (i - N_SERVERS) % 9 == 4) {
                Some(Ipv6Addr::new(0x2001, 0xdb8, 0x20, u16::from(o[2]), 0, 0, 0, u16::from(o[3])))
            } else {
                None
            };
            let delay = if server { rng.range(40 * US, 150 * US) } else { rng.range(80 * US, 400 * US) };
            hosts.push(Host { name, ip4, ip6, mac: [0x02, 0x14, 0x0a, 0x14, o[2], o[3]], server, delay });
        }
        let mut pool = vec![0u8; 192 * 1024];
        for chunk in pool.chunks_mut(8) {
            let v = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Gen {
            start: cfg.start_ns + i64::from(cfg.day) * DAY,
            scale: cfg.scale,
            cat: Catalog::build(),
            hosts,
            ws: Vec::new(),
            plan: Plan::default(),
            res_cache: HashMap::new(),
            proxy_cache: HashMap::new(),
            sink: Sink {
                pcap,
                heap: BinaryHeap::new(),
                slots: Vec::new(),
                free: Vec::new(),
                seq: 0,
                flows: FlowEstimator::default(),
                stats: [Stats::default(); N_TAGS],
            },
            rng,
            tag: 0,
            floor: cfg.start_ns + i64::from(cfg.day) * DAY,
            scratch: Vec::with_capacity(70_000),
            pay: Vec::with_capacity(70_000),
            dns: Vec::with_capacity(2048),
            pool,
            pool_pos: 0,
            ipid: 1,
            tunnel_seq: 0,
        }
    }

    // ---- packets -----------------------------------------------------------

    /// Builds one frame and queues it. `slice`: cut a long payload to
    /// [`SLICE_KEEP`] bytes in the capture.
    #[expect(clippy::too_many_arguments, reason = "one packet's worth of fields")]
    fn emit(&mut self, ts: i64, src: &Node, dst: &Node, l4: L4, payload: &[u8], slice: bool, dns: u8) {
        debug_assert!(ts >= self.floor, "packet before its job's start");
        let ts = ts.max(self.floor);
        let vlan = if src.server || dst.server { SERVER_VLAN } else { 0 };
        self.ipid = self.ipid.wrapping_add(1);
        let mut b = PacketBuilder::new(&mut self.scratch).ethernet(dst.mac, src.mac);
        if vlan != 0 {
            b = b.vlan(vlan);
        }
        b = match (src.ip, dst.ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(Ipv4 { ttl: src.ttl, id: self.ipid, ..Ipv4::new(s, d) }),
            (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(Ipv6 { hop_limit: src.ttl, ..Ipv6::new(s, d) }),
            _ => unreachable!("mixed address families in one packet"),
        };
        let v6 = src.ip.is_ipv6();
        let (proto, flags, sport, dport) = match l4 {
            L4::Tcp { sp, dp, seq, ack, flags, win, opts, offload } => {
                let o: &[u8] = match (opts, v6) {
                    (TcpOpts::None, _) => &[],
                    (TcpOpts::Syn, false) => &SYN_OPTS_V4,
                    (TcpOpts::Syn, true) => &SYN_OPTS_V6,
                    (TcpOpts::SynAck, false) => &SYNACK_OPTS_V4,
                    (TcpOpts::SynAck, true) => &SYNACK_OPTS_V6,
                };
                let checksum = offload.then(|| {
                    let tcp_len = (20 + o.len() + payload.len()) as u64;
                    let sum = checksum_add(checksum_add(0, &ip_bytes(src.ip)), &ip_bytes(dst.ip));
                    checksum_fold(sum + 6 + (tcp_len >> 16) + (tcp_len & 0xffff))
                });
                b = b.tcp(Tcp { seq, ack, window: win, options: o, checksum, ..Tcp::new(sp, dp, flags) });
                (6, flags, sp, dp)
            }
            L4::Udp { sp, dp } => {
                b = b.udp(Udp::new(sp, dp));
                (17, 0, sp, dp)
            }
            L4::Icmp(h) => {
                b = b.icmp(h);
                (1, 0, 0, 0)
            }
            L4::Icmp6(h) => {
                b = b.icmpv6(h);
                (58, 0, 0, 0)
            }
        };
        let len = b.payload(payload).finish();
        let l2 = if vlan != 0 { 18 } else { 14 };
        let ip_len = (len - l2) as u32;
        let caplen = if slice && payload.len() > SLICE_MIN { len - payload.len() + SLICE_KEEP } else { len };
        // Switches pad short frames to the 60-byte minimum; the IP length excludes the pad.
        let orig_len = len.max(60);
        if self.scratch.len() < orig_len {
            self.scratch.resize(orig_len, 0);
        }
        let meta = Meta {
            ts,
            orig_len: orig_len as u32,
            ip_len,
            tag: self.tag,
            dns,
            proto,
            flags,
            vlan,
            src: ip16(src.ip),
            sport,
            dst: ip16(dst.ip),
            dport,
        };
        let cap = caplen.max(orig_len.min(60));
        self.sink.push(meta, &self.scratch[..cap]);
    }

    /// [`emit`](Self::emit) with `self.pay` as the payload.
    fn emit_pay(&mut self, ts: i64, src: &Node, dst: &Node, l4: L4, slice: bool, dns: u8) {
        let p = std::mem::take(&mut self.pay);
        self.emit(ts, src, dst, l4, &p, slice, dns);
        self.pay = p;
    }

    /// Random bytes from the pool (fast; the pool is random enough for payloads).
    fn pool_bytes(&mut self, len: usize) -> std::ops::Range<usize> {
        let len = len.min(self.pool.len() - 4096);
        self.pool_pos = (self.pool_pos + 4099) % (self.pool.len() - len);
        self.pool_pos..self.pool_pos + len
    }

    /// Appends `len` bytes of `style` payload to `self.pay`.
    fn fill(&mut self, style: Style, len: usize) {
        let r = self.pool_bytes(len);
        let start = self.pay.len();
        self.pay.extend_from_slice(&self.pool[r]);
        let p = &mut self.pay[start..];
        match style {
            Style::Raw => {}
            Style::Tls if len >= 6 => {
                // Records of at most 2^14 + 256 bytes, one starting at each segment.
                let n = len.div_ceil(16_645);
                let mut off = 0;
                for i in 0..n {
                    let chunk = if i + 1 == n { len - off } else { len / n };
                    let body = (chunk - 5) as u16;
                    p[off..off + 5].copy_from_slice(&[0x17, 0x03, 0x03, (body >> 8) as u8, body as u8]);
                    off += chunk;
                }
            }
            Style::Smb if len >= 4 => {
                let l = (len - 4) as u32;
                p[..4].copy_from_slice(&[0, (l >> 16) as u8, (l >> 8) as u8, l as u8]);
                if len >= 56 {
                    // SMB2 transform header: protocol id, signature, nonce, original size, flags.
                    // (4 + protocol id 4 + signature 16 + nonce 16 + size 4 + reserved 2 + flags 2 + session 8.)
                    p[4..8].copy_from_slice(&[0xfd, b'S', b'M', b'B']);
                    p[35..40].fill(0); // the CCM nonce is 11 bytes, the rest of its field zero
                    p[40..44].copy_from_slice(&((len - 56) as u32).to_le_bytes());
                    p[44..48].copy_from_slice(&[0, 0, 1, 0]);
                }
            }
            _ => {}
        }
    }

    // ---- TCP -----------------------------------------------------------------

    fn eport(&mut self, node: &Node) -> u16 {
        if node.server || node.mac == ROUTER_MAC { self.rng.range(32768, 61000) as u16 } else { self.rng.range(49152, 65536) as u16 }
    }

    /// Three-way handshake starting at `t`.
    fn tcp_open(&mut self, t: i64, c: Node, s: Node, sp: u16) -> Conn {
        let cp = self.eport(&c);
        let (isn_c, isn_s) = (self.rng.u32(), self.rng.u32());
        let syn = L4::Tcp { sp: cp, dp: sp, seq: isn_c, ack: 0, flags: tcp_flags::SYN, win: 64240, opts: TcpOpts::Syn, offload: false };
        self.emit(t, &c, &s, syn, &[], false, 0);
        let t1 = t + 2 * s.delay + self.rng.range(20 * US, 90 * US);
        let sa = L4::Tcp {
            sp,
            dp: cp,
            seq: isn_s,
            ack: isn_c.wrapping_add(1),
            flags: tcp_flags::SYN | tcp_flags::ACK,
            win: 65160,
            opts: TcpOpts::SynAck,
            offload: false,
        };
        self.emit(t1, &s, &c, sa, &[], false, 0);
        let t2 = t1 + 2 * c.delay + 10 * US;
        let mut conn = Conn { c, s, cp, sp, cseq: isn_c.wrapping_add(1), sseq: isn_s.wrapping_add(1), t: t2, last_c: true };
        self.tcp_flag(&mut conn, true, t2, tcp_flags::ACK);
        conn
    }

    /// A segment without payload (ACK, FIN, RST) from one side at `ts`.
    fn tcp_flag(&mut self, conn: &mut Conn, client: bool, ts: i64, flags: u8) {
        let (src, dst, sp, dp, seq, ack, win) = if client {
            (conn.c, conn.s, conn.cp, conn.sp, conn.cseq, conn.sseq, 1026)
        } else {
            (conn.s, conn.c, conn.sp, conn.cp, conn.sseq, conn.cseq, 501)
        };
        let ack = if flags & tcp_flags::ACK != 0 { ack } else { 0 };
        self.emit(ts, &src, &dst, L4::Tcp { sp, dp, seq, ack, flags, win, opts: TcpOpts::None, offload: false }, &[], false, 0);
        let adv = u32::from(flags & (tcp_flags::FIN | tcp_flags::SYN) != 0);
        if client {
            conn.cseq = conn.cseq.wrapping_add(adv);
        } else {
            conn.sseq = conn.sseq.wrapping_add(adv);
        }
        conn.t = conn.t.max(ts);
        conn.last_c = client;
    }

    /// Sends `src` from one side after `think` ns of idling, with slow start
    /// and delayed ACKs from the receiver. `dns`: DNS messages this stream carries.
    fn tcp_stream(&mut self, conn: &mut Conn, client: bool, think: i64, src: &Src, seg: Seg, dns: u8) {
        let total = src.head.len() + src.body;
        if total == 0 {
            return;
        }
        let (snd, rcv) = if client { (conn.c, conn.s) } else { (conn.s, conn.c) };
        let mss = if seg.mss > 0 {
            seg.mss
        } else if conn.v6() {
            1440
        } else {
            1460
        };
        let rtt = 2 * (snd.delay + rcv.delay);
        let mut t = conn.turn(client, self.rng.range(30 * US, 400 * US)) + think;
        let mut cwnd = seg.cwnd.0;
        let mut sent = 0;
        let mut nseg = 0;
        let mut last_ack = t;
        while sent < total {
            let mut t_seg = t;
            for _ in 0..cwnd {
                if sent >= total {
                    break;
                }
                let mut len = mss.min(total - sent);
                // Never leave a tail too short to carry a record/message header.
                if total - sent - len > 0 && total - sent - len < 8 {
                    len -= 8;
                }
                // Literal head bytes travel in their own segments.
                let head_left = src.head.len().saturating_sub(sent);
                if head_left > 0 {
                    len = len.min(head_left);
                }
                self.pay.clear();
                if head_left > 0 {
                    self.pay.extend_from_slice(&src.head[sent..sent + len]);
                } else {
                    self.fill(src.style, len);
                }
                sent += len;
                nseg += 1;
                let last = sent >= total;
                let flags = tcp_flags::ACK | if last { tcp_flags::PSH } else { 0 };
                let (sp, dp, seq, ack) = if client { (conn.cp, conn.sp, conn.cseq, conn.sseq) } else { (conn.sp, conn.cp, conn.sseq, conn.cseq) };
                let win = if client { 1026 } else { 501 };
                let l4 = L4::Tcp { sp, dp, seq, ack, flags, win, opts: TcpOpts::None, offload: seg.offload };
                let carries_dns = u8::from(last) * dns;
                self.emit_pay(t_seg, &snd, &rcv, l4, head_left == 0, carries_dns);
                if client {
                    conn.cseq = conn.cseq.wrapping_add(len as u32);
                } else {
                    conn.sseq = conn.sseq.wrapping_add(len as u32);
                }
                conn.last_c = client;
                conn.t = conn.t.max(t_seg);
                if nseg % seg.ack_every == 0 || (last && seg.ack_last) {
                    let ta = t_seg + 2 * rcv.delay + self.rng.range(10 * US, 60 * US);
                    self.tcp_flag(conn, !client, ta, tcp_flags::ACK);
                    last_ack = ta;
                }
                // Serialization at roughly 1 Gbit/s.
                t_seg += (len as i64 * 8).max(2 * US);
            }
            t = (t + rtt).max(t_seg);
            cwnd = (cwnd * 2).min(seg.cwnd.1);
        }
        conn.t = conn.t.max(last_ack);
    }

    /// Closes after `tail` ns of idling: FIN handshake (initiated by the
    /// client unless `server_first`) or, with `rst`, a RST from the client.
    fn tcp_close(&mut self, conn: &mut Conn, tail: i64, rst: bool, server_first: bool) {
        let first = !server_first;
        let t = conn.turn(first, 50 * US) + tail;
        if rst {
            self.tcp_flag(conn, true, t, tcp_flags::RST | tcp_flags::ACK);
            return;
        }
        self.tcp_flag(conn, first, t, tcp_flags::FIN | tcp_flags::ACK);
        let other = if first { conn.s } else { conn.c };
        let t2 = t + 2 * other.delay + self.rng.range(20 * US, 200 * US);
        self.tcp_flag(conn, !first, t2, tcp_flags::FIN | tcp_flags::ACK);
        let me = if first { conn.c } else { conn.s };
        let t3 = t2 + 2 * me.delay + 10 * US;
        self.tcp_flag(conn, first, t3, tcp_flags::ACK);
    }

    // ---- TLS -----------------------------------------------------------------

    /// A TLS 1.3 ClientHello record with SNI, padded to 517 bytes like browsers do.
    fn client_hello(&mut self, sni: &str) -> Vec<u8> {
        let mut ext = Vec::with_capacity(400);
        let name = sni.as_bytes();
        let nl = name.len() as u16;
        // server_name
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(nl + 5).to_be_bytes());
        ext.extend_from_slice(&(nl + 3).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&nl.to_be_bytes());
        ext.extend_from_slice(name);
        // supported_groups, ec_point_formats, signature_algorithms, ALPN, supported_versions, psk modes
        ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
        ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
        ext.extend_from_slice(&[0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03]);
        ext.extend_from_slice(&[0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, b'h', b'2', 0x08]);
        ext.extend_from_slice(b"http/1.1");
        ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
        ext.extend_from_slice(&[0x00, 0x2d, 0x00, 0x02, 0x01, 0x01]);
        // key_share (x25519)
        ext.extend_from_slice(&[0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
        let r = self.pool_bytes(32);
        ext.extend_from_slice(&self.pool[r]);
        let suites: [u8; 18] = [0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8];
        // Fixed part of the hello body: version 2 + random 32 + sid 33 + suites 20 + compression 2 + ext len 2.
        let fixed = 2 + 32 + 33 + 20 + 2 + 2;
        // padding extension up to a 512-byte handshake body (517-byte record minus headers)
        let body_now = fixed + ext.len() + 4;
        if body_now < 508 {
            let pad = 508 - body_now;
            ext.extend_from_slice(&[0x00, 0x15]);
            ext.extend_from_slice(&(pad as u16).to_be_bytes());
            ext.resize(ext.len() + pad, 0);
        }
        let body_len = fixed + ext.len();
        let mut h = Vec::with_capacity(body_len + 9);
        h.extend_from_slice(&[0x16, 0x03, 0x01]);
        h.extend_from_slice(&((body_len + 4) as u16).to_be_bytes());
        h.push(0x01);
        h.extend_from_slice(&(body_len as u32).to_be_bytes()[1..]);
        h.extend_from_slice(&[0x03, 0x03]);
        let r = self.pool_bytes(32);
        h.extend_from_slice(&self.pool[r]);
        h.push(32);
        let r = self.pool_bytes(32);
        h.extend_from_slice(&self.pool[r]);
        h.extend_from_slice(&(suites.len() as u16).to_be_bytes());
        h.extend_from_slice(&suites);
        h.extend_from_slice(&[0x01, 0x00]);
        h.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        h.extend_from_slice(&ext);
        h
    }

    /// ServerHello + ChangeCipherSpec records (the encrypted rest follows as body).
    fn server_hello(&mut self) -> Vec<u8> {
        let mut h = Vec::with_capacity(140);
        let body_len: usize = 2 + 32 + 33 + 2 + 1 + 2 + 6 + 40;
        h.extend_from_slice(&[0x16, 0x03, 0x03]);
        h.extend_from_slice(&((body_len + 4) as u16).to_be_bytes());
        h.push(0x02);
        h.extend_from_slice(&(body_len as u32).to_be_bytes()[1..]);
        h.extend_from_slice(&[0x03, 0x03]);
        let r = self.pool_bytes(32);
        h.extend_from_slice(&self.pool[r]);
        h.push(32);
        let r = self.pool_bytes(32);
        h.extend_from_slice(&self.pool[r]);
        h.extend_from_slice(&[0x13, 0x01, 0x00]);
        h.extend_from_slice(&46u16.to_be_bytes());
        h.extend_from_slice(&[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
        h.extend_from_slice(&[0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
        let r = self.pool_bytes(32);
        h.extend_from_slice(&self.pool[r]);
        h.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
        h
    }

    /// TLS 1.3 handshake on an open connection.
    fn tls_handshake(&mut self, conn: &mut Conn, sni: &str) {
        let hello = self.client_hello(sni);
        self.tcp_stream(conn, true, 0, &Src::head(hello), SEG_REQ, 0);
        let flight = Src { head: self.server_hello(), style: Style::Tls, body: self.rng.range(2400, 5400) as usize };
        self.tcp_stream(conn, false, 0, &flight, SEG_RESP, 0);
        let mut fin = vec![0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
        fin.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x35]);
        let r = self.pool_bytes(0x35);
        fin.extend_from_slice(&self.pool[r]);
        self.tcp_stream(conn, true, 0, &Src::head(fin), SEG_REQ, 0);
    }

    /// Request/response exchanges over TLS: (request bytes, response bytes, think ns).
    fn tls_exchanges(&mut self, conn: &mut Conn, ex: &[(usize, usize, i64)]) {
        for &(req, resp, think) in ex {
            self.tcp_stream(conn, true, think, &Src::body(Style::Tls, req), SEG_REQ, 0);
            let proc_ns = self.rng.range(MS, 40 * MS);
            self.tcp_stream(conn, false, proc_ns, &Src::body(Style::Tls, resp), SEG_RESP, 0);
        }
    }

    /// A browsing-style exchange script.
    fn web_script(&mut self, flags: u8) -> Vec<(usize, usize, i64)> {
        let n = self.rng.count(1.8, 12);
        let median = if flags & F_BIG != 0 { 40_000.0 } else { 5_000.0 };
        (0..n)
            .map(|i| {
                let think = if i == 0 { 0 } else { self.rng.exp_ns(2 * SEC).min(40 * SEC) };
                let req = self.rng.size(450.0, 0.5, 80, 6000);
                let resp = self.rng.size(median, 1.2, 120, 1_500_000);
                (req, resp, think)
            })
            .collect()
    }

    /// Tail and style of a browser connection's end.
    fn close_web(&mut self, conn: &mut Conn) {
        let tail = self.rng.range(200 * MS, 45 * SEC);
        let rst = self.rng.chance(0.25);
        let server_first = !rst && self.rng.chance(0.2);
        self.tcp_close(conn, tail, rst, server_first);
    }
}

// ---------------------------------------------------------------------------
// DNS traffic
// ---------------------------------------------------------------------------

/// Bulk mail senders (inbound only).
const BULK_SENDERS: &[&str] = &["promo-mailer.net", "newsletter-hub.com", "deals-daily.biz", "event-invites.org"];

/// Address of a partner's (or bulk sender's) mail server `n`.
fn mta_ip(domain: &str, n: u8) -> Ipv4Addr {
    let h = fnv(domain.as_bytes());
    if BULK_SENDERS.contains(&domain) {
        Ipv4Addr::new(198, 19, 100 + (h % 100) as u8, 1 + ((h >> 8) % 250) as u8)
    } else {
        Ipv4Addr::new(198, 19, 25, (1 + (h % 120) as u8).wrapping_add(n.wrapping_mul(121)) % 250 + 1)
    }
}

fn cache_key(qname: &str, qtype: u16, who: u64) -> u64 {
    fnv(qname.as_bytes()) ^ u64::from(qtype) << 48 ^ who.wrapping_mul(0x9e37_79b9)
}

impl<W: Write> Gen<W> {
    fn emit_dns(&mut self, ts: i64, src: &Node, dst: &Node, sp: u16, dp: u16) {
        let d = std::mem::take(&mut self.dns);
        self.emit(ts, src, dst, L4::Udp { sp, dp }, &d, false, 1);
        self.dns = d;
    }

    /// One lookup by the internal `client` through resolver `res`. Names in
    /// the resolver's own zones (`local`) and cached names are answered at
    /// once; others are forwarded to an external resolver (over TCP too when
    /// the answer is `big`). Returns when the client has the answer.
    #[expect(clippy::too_many_arguments, reason = "a lookup has that many knobs")]
    fn lookup(&mut self, t: i64, client: Node, res: usize, qname: &str, qtype: u16, ans: &Answer, local: bool, edns: bool) -> i64 {
        let rnode = self.hosts[res].node(client.ip.is_ipv6());
        let cp = self.eport(&client);
        let id = self.rng.u16();
        self.dns.clear();
        write_dns(&mut self.dns, id, qname, qtype, None, edns, false, false);
        self.emit_dns(t, &client, &rnode, cp, 53);
        let arrive = t + 2 * rnode.delay;
        let key = cache_key(qname, qtype, res as u64);
        let cached = self.res_cache.get(&key).is_some_and(|&e| e > t);
        let resp_t = if local || cached {
            arrive + self.rng.range(30 * US, 400 * US)
        } else {
            let r4 = self.hosts[res].node(false);
            let ext = ext_node(IpAddr::V4(EXT_RESOLVERS[(res + usize::from(self.rng.chance(0.1))) % 2]), 9 * MS);
            let fp = self.eport(&r4);
            let fid = self.rng.u16();
            let tf = arrive + self.rng.range(40 * US, 200 * US);
            self.dns.clear();
            write_dns(&mut self.dns, fid, qname, qtype, None, true, false, false);
            self.emit_dns(tf, &r4, &ext, fp, 53);
            // The external resolver's own recursion takes a while on a miss.
            let upstream = self.rng.exp_ns(14 * MS).min(400 * MS) + 300 * US;
            let mut tr = tf + 2 * ext.delay + upstream;
            self.dns.clear();
            write_dns(&mut self.dns, fid, qname, qtype, Some(ans), true, ans.big, false);
            self.emit_dns(tr, &ext, &r4, 53, fp);
            if ans.big {
                // Truncated: retry over TCP (RFC 7766).
                let mut conn = self.tcp_open(tr + 2 * r4.delay + 50 * US, r4, ext, 53);
                let mut q = Vec::new();
                write_dns(&mut q, fid.wrapping_add(1), qname, qtype, None, true, false, true);
                self.tcp_stream(&mut conn, true, 0, &Src::head(q), SEG_REQ, 1);
                let mut a = Vec::new();
                write_dns(&mut a, fid.wrapping_add(1), qname, qtype, Some(ans), true, false, true);
                self.tcp_stream(&mut conn, false, 0, &Src::head(a), SEG_RESP, 1);
                self.tcp_close(&mut conn, 0, false, false);
                tr = conn.t;
            }
            self.res_cache.insert(key, tr + i64::from(ans.ttl()) * SEC);
            tr + 2 * r4.delay + self.rng.range(20 * US, 100 * US)
        };
        self.dns.clear();
        write_dns(&mut self.dns, id, qname, qtype, Some(ans), edns, false, false);
        self.emit_dns(resp_t, &rnode, &client, 53, cp);
        resp_t + 2 * client.delay + 20 * US
    }

    /// A lookup answered by the internal resolvers' own zones.
    fn lookup_local(&mut self, t: i64, client: Node, qname: &str, qtype: u16) -> i64 {
        let ans = self.internal_answer(qname, qtype);
        let res = if self.rng.chance(0.8) { RES1 } else { RES2 };
        let edns = client.server;
        self.lookup(t, client, res, qname, qtype, &ans, true, edns)
    }

    /// What the internal resolvers answer for their own zones
    /// (`corp.example-corp.test`, `example-corp.test`, 10.20.in-addr.arpa).
    fn internal_answer(&self, qname: &str, qtype: u16) -> Answer {
        let host_of = |name: &str| self.hosts.iter().position(|h| h.fqdn() == name);
        let mut a = match qtype {
            dns_type::SRV if qname.starts_with("_ldap._tcp.") => {
                let mut a = Answer::default();
                for i in [RES1, RES2] {
                    let h = &self.hosts[i];
                    a.an.push(Rr::new(qname, 600, Rd::Srv(389, h.fqdn())));
                    a.ar.push(Rr::new(h.fqdn(), 1200, Rd::A(h.ip4)));
                }
                a
            }
            dns_type::PTR => {
                let ip = qname.strip_suffix(".in-addr.arpa").and_then(|r| {
                    let o: Vec<u8> = r.split('.').filter_map(|x| x.parse().ok()).collect();
                    (o.len() == 4).then(|| Ipv4Addr::new(o[3], o[2], o[1], o[0]))
                });
                match ip.and_then(|ip| self.hosts.iter().find(|h| h.ip4 == ip)) {
                    Some(h) => Answer::records(vec![Rr::new(qname, 1200, Rd::Ptr(h.fqdn()))]),
                    None => Answer::nx("20.10.in-addr.arpa"),
                }
            }
            dns_type::MX if qname == MAIL_DOMAIN => Answer::records(vec![Rr::new(qname, 3600, Rd::Mx(10, format!("mail.{MAIL_DOMAIN}")))]),
            dns_type::SOA if qname == MAIL_DOMAIN => Answer::records(vec![Rr::new(qname, 3600, Rd::Soa(MAIL_DOMAIN.to_string()))]),
            dns_type::NS if qname == MAIL_DOMAIN => {
                Answer::records([RES1, RES2].iter().map(|&i| Rr::new(qname, 3600, Rd::Ns(self.hosts[i].fqdn()))).collect())
            }
            _ => {
                let zone = if qname.ends_with(CORP) { CORP } else { MAIL_DOMAIN };
                let target = if qname == format!("intranet.{CORP}") {
                    Some((Some(self.hosts[FS].fqdn()), FS))
                } else if qname == format!("mail.{MAIL_DOMAIN}") {
                    Some((None, MAIL))
                } else {
                    host_of(qname).map(|i| (None, i))
                };
                match (target, qname == format!("www.{MAIL_DOMAIN}")) {
                    (_, true) => match qtype {
                        dns_type::A => Answer::records(vec![Rr::new(qname, 3600, Rd::A(Ipv4Addr::new(203, 0, 113, 20)))]),
                        _ => Answer::nodata(MAIL_DOMAIN),
                    },
                    (Some((cname, i)), false) => {
                        let h = &self.hosts[i];
                        let mut an = Vec::new();
                        let mut owner = qname.to_string();
                        if let Some(c) = cname {
                            an.push(Rr::new(qname, 3600, Rd::Cname(c.clone())));
                            owner = c;
                        }
                        match (qtype, h.ip6) {
                            (dns_type::A, _) => an.push(Rr::new(owner, 1200, Rd::A(h.ip4))),
                            (dns_type::AAAA, Some(v6)) => an.push(Rr::new(owner, 1200, Rd::Aaaa(v6))),
                            _ => return Answer { aa: true, ..Answer::nodata(zone) },
                        }
                        Answer::records(an)
                    }
                    (None, false) => Answer::nx(zone),
                }
            }
        };
        a.aa = true;
        a
    }

    /// A catalog domain's answer for A or AAAA (CNAME chain included).
    fn domain_answer(&self, d: usize, qtype: u16) -> Answer {
        let dom = &self.cat.domains[d];
        let mut an = Vec::new();
        let mut owner = dom.name.clone();
        for c in &dom.chain {
            an.push(Rr::new(owner, 300, Rd::Cname(c.clone())));
            owner = c.clone();
        }
        if qtype == dns_type::AAAA {
            if dom.aaaa.is_empty() {
                return Answer { an, ..Answer::nodata(&zone_of(&owner)) };
            }
            an.extend(dom.aaaa.iter().map(|a| Rr::new(owner.clone(), dom.ttl, Rd::Aaaa(*a))));
        } else {
            an.extend(dom.a.iter().map(|a| Rr::new(owner.clone(), dom.ttl, Rd::A(*a))));
        }
        Answer::records(an)
    }

    /// Workstation `w` resolves catalog domain `d` (client cache first; AAAA
    /// too on IPv6 hosts). Returns when it can connect, and where to.
    fn ws_resolve(&mut self, t: i64, w: usize, d: usize, want_v6: bool) -> (i64, IpAddr) {
        let host = self.ws[w].host;
        let v6host = self.ws[w].v6;
        let dom_ttl = i64::from(self.cat.domains[d].ttl);
        let key = cache_key(&self.cat.domains[d].name, dns_type::A, 0);
        let mut ready = t;
        if self.ws[w].cache.get(&key).is_none_or(|&e| e <= t) {
            let name = self.cat.domains[d].name.clone();
            let res = if self.rng.chance(0.8) { RES1 } else { RES2 };
            let client = self.hosts[host].node(v6host && self.rng.chance(0.5));
            let ans = self.domain_answer(d, dns_type::A);
            ready = self.lookup(t, client, res, &name, dns_type::A, &ans, false, false);
            if v6host {
                let ans6 = self.domain_answer(d, dns_type::AAAA);
                let r6 = self.lookup(t + 150 * US, client, res, &name, dns_type::AAAA, &ans6, false, false);
                ready = ready.max(r6);
            }
            self.ws[w].cache.insert(key, t + dom_ttl * SEC);
        }
        let dom = &self.cat.domains[d];
        let ip = if want_v6 && !dom.aaaa.is_empty() { IpAddr::V6(*self.rng.pick(&dom.aaaa)) } else { IpAddr::V4(*self.rng.pick(&dom.a)) };
        (ready, ip)
    }

    /// The proxy resolves catalog domain `d` for a proxied request.
    fn proxy_resolve(&mut self, t: i64, d: usize) -> (i64, Ipv4Addr) {
        let key = cache_key(&self.cat.domains[d].name, dns_type::A, 7);
        let mut ready = t;
        if self.proxy_cache.get(&key).is_none_or(|&e| e <= t) {
            let name = self.cat.domains[d].name.clone();
            let ans = self.domain_answer(d, dns_type::A);
            let p = self.hosts[PROXY].node(false);
            ready = self.lookup(t, p, RES1, &name, dns_type::A, &ans, false, true);
            self.proxy_cache.insert(key, t + i64::from(self.cat.domains[d].ttl) * SEC);
        }
        let ip = *self.rng.pick(&self.cat.domains[d].a);
        (ready, ip)
    }

    /// A lookup of a name that does not exist (typos, search-suffix probes).
    fn lookup_nx(&mut self, t: i64, client: Node, qname: &str) -> i64 {
        let ans = Answer::nx(&zone_of(qname));
        let res = if self.rng.chance(0.8) { RES1 } else { RES2 };
        self.lookup(t, client, res, qname, dns_type::A, &ans, false, client.server)
    }

    // ---- other UDP/ICMP ----------------------------------------------------

    /// One NTP client/server exchange (ports 123/123).
    fn ntp(&mut self, t: i64, c: Node, s: Node, stratum: u8) {
        let mut q = [0u8; 48];
        q[0] = 0x23; // LI 0, version 4, client
        q[2] = 17;
        q[3] = 0xe9;
        q[40..48].copy_from_slice(&ntp_ts(t));
        self.emit(t, &c, &s, L4::Udp { sp: 123, dp: 123 }, &q, false, 0);
        let tr = t + 2 * s.delay + self.rng.range(15 * US, 80 * US);
        let mut r = [0u8; 48];
        r[0] = 0x24; // LI 0, version 4, server
        r[1] = stratum;
        r[2] = 17;
        r[3] = 0xe9;
        r[4..8].copy_from_slice(&[0, 0, 0x02, 0x1c]);
        r[8..12].copy_from_slice(&[0, 0, 0x05, 0x80]);
        r[12..16].copy_from_slice(match s.ip {
            IpAddr::V4(_) if stratum == 2 => b"GPS\0",
            _ => &[198, 18, 123, 1],
        });
        r[16..24].copy_from_slice(&ntp_ts(t - 317 * SEC));
        r[24..32].copy_from_slice(&ntp_ts(t));
        r[32..40].copy_from_slice(&ntp_ts(t + s.delay));
        r[40..48].copy_from_slice(&ntp_ts(t + s.delay + 20 * US));
        self.emit(tr, &s, &c, L4::Udp { sp: 123, dp: 123 }, &r, false, 0);
    }

    /// An echo request (Linux ping: 56 bytes) and, if `reply`, its reply.
    fn ping(&mut self, t: i64, src: Node, dst: Node, id: u16, seq: u16, reply: bool) {
        let mut p = [0u8; 56];
        p[..8].copy_from_slice(&((t / SEC) as u64).to_le_bytes());
        for (i, b) in p[8..].iter_mut().enumerate() {
            *b = 0x10 + i as u8;
        }
        let v6 = src.ip.is_ipv6();
        let (req, rep) = if v6 {
            (L4::Icmp6(Icmp::echo6_request(id, seq)), L4::Icmp6(Icmp::echo6_reply(id, seq)))
        } else {
            (L4::Icmp(Icmp::echo_request(id, seq)), L4::Icmp(Icmp::echo_reply(id, seq)))
        };
        self.emit(t, &src, &dst, req, &p, false, 0);
        if reply {
            let tr = t + 2 * dst.delay + self.rng.range(10 * US, 60 * US);
            self.emit(tr, &dst, &src, rep, &p, false, 0);
        }
    }
}

// ---------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
const PATHS: &[&str] = &["/", "/index.html", "/news/latest", "/img/logo.png", "/api/v1/status", "/static/app.js", "/download/file.bin"];

impl<W: Write> Gen<W> {
    /// Plain HTTP request/response pairs on an open connection; `absolute`
    /// uses the proxy form of the request line.
    fn http_exchanges(&mut self, conn: &mut Conn, host: &str, absolute: bool, ex: &[(usize, usize, i64)]) {
        for &(_, resp, think) in ex {
            let path = *self.rng.pick(PATHS);
            let target = if absolute { format!("http://{host}{path}") } else { path.to_string() };
            let req = format!(
                "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {UA}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
            );
            self.tcp_stream(conn, true, think, &Src::head(req.into_bytes()), SEG_REQ, 0);
            let head = format!(
                "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\nContent-Length: {resp}\r\nCache-Control: max-age=3600\r\n\r\n"
            );
            let proc_ns = self.rng.range(MS, 30 * MS);
            self.tcp_stream(conn, false, proc_ns, &Src { head: head.into_bytes(), style: Style::Raw, body: resp }, SEG_RESP, 0);
        }
    }

    /// Workstation `w` fetches from catalog domain `d` (directly or through the proxy).
    fn fetch(&mut self, t: i64, w: usize, d: usize) {
        let flags = self.cat.domains[d].flags;
        let name = self.cat.domains[d].name.clone();
        let rtt = self.cat.domains[d].rtt;
        let host = self.ws[w].host;
        let mut t = t;
        if self.rng.chance(0.015) {
            // A mistyped name first: one letter replaced and doubled (always a different name).
            let mut typo = name.clone().into_bytes();
            let i = self.rng.below(typo.len().saturating_sub(5).max(1));
            if typo[i] != b'.' {
                typo[i] = b"abcdefghijklmnopqrstuvwxyz"[self.rng.below(26)];
                typo.insert(i, typo[i]);
                let typo = String::from_utf8_lossy(&typo).into_owned();
                let c = self.hosts[host].node(false);
                t = self.lookup_nx(t, c, &typo) + self.rng.range(500 * MS, 4 * SEC);
            }
        }
        let web = self.web_script(flags);
        let port = if flags & F_HTTP != 0 { 80 } else { 443 };
        if self.ws[w].proxied && flags & F_BG == 0 {
            self.fetch_via_proxy(t, w, d, &name, port, &web);
            return;
        }
        let want_v6 = self.ws[w].v6 && self.rng.chance(0.75);
        let (t1, ip) = self.ws_resolve(t, w, d, want_v6);
        let c = self.hosts[host].node(ip.is_ipv6());
        let s = ext_node(ip, rtt);
        let mut conn = self.tcp_open(t1, c, s, port);
        if port == 80 {
            self.http_exchanges(&mut conn, &name, false, &web);
        } else {
            self.tls_handshake(&mut conn, &name);
            self.tls_exchanges(&mut conn, &web);
        }
        self.close_web(&mut conn);
    }

    /// A proxied fetch: CONNECT (or an absolute-URI GET for plain HTTP) to the
    /// proxy, which resolves the name and opens its own connection outside.
    fn fetch_via_proxy(&mut self, t: i64, w: usize, d: usize, name: &str, port: u16, web: &[(usize, usize, i64)]) {
        let c = self.hosts[self.ws[w].host].node(false);
        let p = self.hosts[PROXY].node(false);
        let mut c1 = self.tcp_open(t, c, p, 3128);
        let (t2, ip) = self.proxy_resolve(c1.t + 2 * p.delay + 100 * US, d);
        let s = ext_node(IpAddr::V4(ip), self.cat.domains[d].rtt);
        let start2 = t2.max(c1.t);
        if port == 443 {
            let req = format!("CONNECT {name}:443 HTTP/1.1\r\nHost: {name}:443\r\nUser-Agent: {UA}\r\nProxy-Connection: keep-alive\r\n\r\n");
            self.tcp_stream(&mut c1, true, 0, &Src::head(req.into_bytes()), SEG_REQ, 0);
            let mut c2 = self.tcp_open(start2.max(c1.t), p, s, 443);
            let ok = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
            let wait = (c2.t - c1.t).max(0);
            self.tcp_stream(&mut c1, false, wait, &Src::head(ok), SEG_REQ, 0);
            let t_tls = c1.t;
            self.tls_handshake(&mut c1, name);
            self.tls_exchanges(&mut c1, web);
            self.close_web(&mut c1);
            // The upstream leg carries the same bytes a moment later.
            c2.t = c2.t.max(t_tls + 300 * US);
            self.tls_handshake(&mut c2, name);
            self.tls_exchanges(&mut c2, web);
            let tail = self.rng.range(MS, 5 * SEC);
            self.tcp_close(&mut c2, tail, false, false);
        } else {
            let t_req = c1.t;
            self.http_exchanges(&mut c1, name, true, web);
            self.close_web(&mut c1);
            let mut c2 = self.tcp_open(start2.max(t_req), p, s, 80);
            self.http_exchanges(&mut c2, name, false, web);
            let tail = self.rng.range(MS, 5 * SEC);
            self.tcp_close(&mut c2, tail, false, false);
        }
    }

    /// A browsing session: a site, a few of its hosts, the odd third party.
    fn browse(&mut self, t: i64, w: usize) {
        let site = self.cat.browsable[zipf_pick(&mut self.rng, &self.cat.browse_zipf)];
        let n = self.rng.count(2.2, 8);
        for i in 0..n {
            let d = if i > 0 && self.rng.chance(0.3) {
                let tp = *self.rng.pick(&self.cat.third_party);
                self.cat.sites[tp].hosts[zipf_pick(&mut self.rng, &self.cat.sites[tp].host_zipf)]
            } else if i == 0 {
                self.cat.sites[site].hosts[0]
            } else {
                self.cat.sites[site].hosts[zipf_pick(&mut self.rng, &self.cat.sites[site].host_zipf)]
            };
            let mut start = t;
            if i > 0 {
                start += self.rng.exp_ns(3 * SEC);
                if self.rng.chance(0.2) {
                    start += self.rng.exp_ns(60 * SEC);
                }
            }
            self.fetch(start, w, d);
        }
    }

    /// SMB3 work on the file server: `ops` reads and writes.
    fn file_work(&mut self, t: i64, w: usize, ops: usize) {
        let host = self.ws[w].host;
        let c = self.hosts[host].node(false);
        let f = self.hosts[FS].node(false);
        if !self.ws[w].fs_known {
            // The file server logs client names: one PTR lookup per client.
            let q = rev_name(self.hosts[host].ip4);
            self.lookup_local(t + 2 * MS, f, &q, dns_type::PTR);
            self.ws[w].fs_known = true;
        }
        let mut conn = self.tcp_open(t, c, f, 445);
        for (req, resp) in [(186, 312), (410, 290), (330, 180)] {
            self.tcp_stream(&mut conn, true, 0, &Src::body(Style::Smb, req), SEG_REQ, 0);
            self.tcp_stream(&mut conn, false, 200 * US, &Src::body(Style::Smb, resp), SEG_RESP, 0);
        }
        for i in 0..ops {
            let think = if i == 0 { 0 } else { self.rng.exp_ns(1500 * MS).min(25 * SEC) };
            let (req, resp) = if self.rng.chance(0.7) {
                (self.rng.range(160, 260) as usize, self.rng.size(12_000.0, 1.3, 120, 4_000_000))
            } else {
                (self.rng.size(8_000.0, 1.3, 200, 4_000_000), self.rng.range(80, 120) as usize)
            };
            self.tcp_stream(&mut conn, true, think, &Src::body(Style::Smb, req), SEG_RESP, 0);
            self.tcp_stream(&mut conn, false, 300 * US, &Src::body(Style::Smb, resp), SEG_RESP, 0);
        }
        let tail = self.rng.range(2 * SEC, 45 * SEC);
        self.tcp_close(&mut conn, tail, false, false);
    }

    /// SMTP up to and through STARTTLS, then the message. `client_name` is the EHLO name.
    fn smtp(&mut self, conn: &mut Conn, server_name: &str, client_name: &str, size: usize) {
        let lines: [(bool, String); 5] = [
            (false, format!("220 {server_name} ESMTP\r\n")),
            (true, format!("EHLO {client_name}\r\n")),
            (false, format!("250-{server_name}\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-STARTTLS\r\n250 8BITMIME\r\n")),
            (true, "STARTTLS\r\n".to_string()),
            (false, "220 2.0.0 Ready to start TLS\r\n".to_string()),
        ];
        for (client, line) in lines {
            let proc_ns = self.rng.range(200 * US, 5 * MS);
            self.tcp_stream(conn, client, proc_ns, &Src::head(line.into_bytes()), SEG_REQ, 0);
        }
        self.tls_handshake(conn, server_name);
        let ex = [(90, 70, 0), (210, 120, 0), (size, 60, 0), (30, 50, 0)];
        self.tls_exchanges(conn, &ex);
        self.tcp_close(conn, 0, false, true);
    }

    /// The mail server relays a message to a partner: MX and A lookups, then SMTP.
    fn relay_out(&mut self, t: i64, size: usize) {
        let partner = *self.rng.pick(PARTNERS);
        let m = self.hosts[MAIL].node(false);
        let mx = format!("mx1.{partner}");
        let mx_ans =
            Answer::records(vec![Rr::new(partner, 3600, Rd::Mx(10, mx.clone())), Rr::new(partner, 3600, Rd::Mx(20, format!("mx2.{partner}")))]);
        let res = if self.rng.chance(0.5) { RES1 } else { RES2 };
        let t = self.lookup(t, m, res, partner, dns_type::MX, &mx_ans, false, true);
        let ip = mta_ip(partner, 1);
        let a_ans = Answer::records(vec![Rr::new(mx.clone(), 3600, Rd::A(ip))]);
        let t = self.lookup(t, m, res, &mx, dns_type::A, &a_ans, false, true);
        let mut conn = self.tcp_open(t, m, ext_node(IpAddr::V4(ip), 0), 25);
        self.smtp(&mut conn, &mx, &format!("mail.{MAIL_DOMAIN}"), size);
    }

    /// Mail from outside: the mail server checks PTR, SPF and DMARC, then takes the message.
    fn inbound_mail(&mut self, t: i64) {
        let bulk = self.rng.chance(0.25);
        let domain = if bulk { *self.rng.pick(BULK_SENDERS) } else { *self.rng.pick(PARTNERS) };
        let ip = mta_ip(domain, if bulk { 0 } else { 1 + self.rng.below(2) as u8 });
        let m = self.hosts[MAIL].node(false);
        let res = if self.rng.chance(0.5) { RES1 } else { RES2 };
        let rev = rev_name(ip);
        let ptr_ans = if bulk && self.rng.chance(0.5) {
            Answer::nx("19.198.in-addr.arpa")
        } else {
            Answer::records(vec![Rr::new(rev.clone(), 3600, Rd::Ptr(format!("mx{}.{domain}", 1 + ip.octets()[3] % 2)))])
        };
        let mut tl = self.lookup(t + 400 * US, m, res, &rev, dns_type::PTR, &ptr_ans, false, true);
        let big = matches!(domain, "mailbox-cloud.com" | "officesuite-online.com");
        let mut spf: Vec<Vec<u8>> = vec![format!("v=spf1 ip4:{}/24 include:_spf.{domain} -all", mta_ip(domain, 1)).into_bytes()];
        if big {
            // Big providers publish long TXT sets (verification tokens): too big for 512-byte UDP.
            for i in 0..6 {
                spf.push(format!("{domain}-site-verification={:016x}{:016x}{:016x}", fnv(&[i]), self.rng.next_u64(), i).into_bytes());
            }
        }
        let txt = Answer { big: big && self.rng.chance(0.5), ..Answer::records(vec![Rr::new(domain, 3600, Rd::Txt(spf))]) };
        tl = self.lookup(tl, m, res, domain, dns_type::TXT, &txt, false, true);
        let dmarc = format!("_dmarc.{domain}");
        let dm = format!("v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}").into_bytes();
        self.lookup(tl, m, res, &dmarc, dns_type::TXT, &Answer::records(vec![Rr::new(dmarc.clone(), 3600, Rd::Txt(vec![dm]))]), false, true);
        let size = self.rng.size(15_000.0, 1.2, 1500, 10_000_000);
        let mut conn = self.tcp_open(t, ext_node(IpAddr::V4(ip), 0), m, 25);
        self.smtp(&mut conn, &format!("mail.{MAIL_DOMAIN}"), &format!("mx1.{domain}"), size);
    }

    /// Something a machine does on its own: telemetry, update checks, AV
    /// definitions, OCSP. Background services go direct, not through the proxy.
    fn background(&mut self, t: i64, w: usize) {
        let pick = self.rng.f64();
        let (site, host, req, resp) = if pick < 0.45 {
            ("os-vendor-update.com", 2, self.rng.size(4000.0, 0.8, 300, 60_000), self.rng.range(200, 600) as usize)
        } else if pick < 0.7 {
            ("os-vendor-update.com", 3, 400, self.rng.size(2500.0, 0.6, 300, 20_000))
        } else if pick < 0.8 {
            ("antivirus-cloud.com", 0, 500, self.rng.size(30_000.0, 1.0, 2000, 1_000_000))
        } else if pick < 0.81 {
            ("os-vendor-update.com", 1, 600, self.rng.size(400_000.0, 0.8, 50_000, 3_000_000))
        } else if pick < 0.9 {
            ("browser-vendor.com", 1, 700, self.rng.size(3000.0, 0.8, 300, 40_000))
        } else {
            ("certauthority.net", 0, 0, self.rng.size(1500.0, 0.3, 400, 4000))
        };
        let d = self.cat.site_domain(site, host);
        let name = self.cat.domains[d].name.clone();
        let flags = self.cat.domains[d].flags;
        let (t1, ip) = self.ws_resolve(t, w, d, false);
        let c = self.hosts[self.ws[w].host].node(false);
        let s = ext_node(ip, self.cat.domains[d].rtt);
        let ex = [(req.max(100), resp, 0)];
        if flags & F_HTTP != 0 {
            let mut conn = self.tcp_open(t1, c, s, 80);
            self.http_exchanges(&mut conn, &name, false, &ex);
            let tail = self.rng.range(MS, 2 * SEC);
            self.tcp_close(&mut conn, tail, false, true);
        } else {
            let mut conn = self.tcp_open(t1, c, s, 443);
            self.tls_handshake(&mut conn, &name);
            self.tls_exchanges(&mut conn, &ex);
            let tail = self.rng.range(10 * MS, 20 * SEC);
            self.tcp_close(&mut conn, tail, false, false);
        }
    }

    /// A user logs on: DC discovery, WPAD, NTP, browser probes, mail client, drive mapping.
    fn boot(&mut self, t: i64, w: usize) {
        let host = self.ws[w].host;
        let c = self.hosts[host].node(false);
        let mut t = self.lookup_local(t, c, &format!("_ldap._tcp.dc._msdcs.{CORP}"), dns_type::SRV);
        t = self.lookup_local(t + 2 * MS, c, &format!("dc1.{CORP}"), dns_type::A);
        t = self.lookup_local(t + 30 * MS, c, &format!("wpad.{CORP}"), dns_type::A);
        let dc = self.hosts[RES1].node(false);
        self.ntp(t + 5 * MS, c, dc, 3);
        // The browser's intranet-redirect probes: random single labels, expanded with the search suffix.
        let mut tp = t + self.rng.range(5 * SEC, 40 * SEC);
        for _ in 0..3 {
            let len = self.rng.range(7, 16) as usize;
            let label: String = (0..len).map(|_| char::from(b'a' + self.rng.below(26) as u8)).collect();
            tp = self.lookup_local(tp, c, &format!("{label}.{CORP}"), dns_type::A) + MS;
        }
        // Mail client: one IMAPS connection for the day.
        let tm = t + self.rng.range(10 * SEC, 60 * SEC);
        let tm = self.lookup_local(tm, c, &format!("mail.{MAIL_DOMAIN}"), dns_type::A);
        let m = self.hosts[MAIL].node(false);
        let mut conn = self.tcp_open(tm, c, m, 993);
        self.tls_handshake(&mut conn, &format!("mail.{MAIL_DOMAIN}"));
        self.tls_exchanges(&mut conn, &[(180, 900, 0), (120, 4000, 50 * MS), (90, 2500, 20 * MS)]);
        self.ws[w].mail = Some(conn);
        let tf = t + self.rng.range(3 * SEC, 20 * SEC);
        self.file_work(tf, w, 3);
    }

    fn mail_op(&mut self, t: i64, w: usize, fetch: bool) {
        let Some(mut conn) = self.ws[w].mail else { return };
        let idle = (t - conn.t).max(0);
        let ex = if fetch {
            vec![(110, 600, idle), (130, self.rng.size(9_000.0, 1.1, 1000, 8_000_000), 30 * MS)]
        } else {
            // IDLE refresh: DONE, then IDLE again.
            vec![(38, 52, idle)]
        };
        self.tls_exchanges(&mut conn, &ex);
        self.ws[w].mail = Some(conn);
    }

    fn mail_send(&mut self, t: i64, w: usize) {
        let host = self.ws[w].host;
        let c = self.hosts[host].node(false);
        let m = self.hosts[MAIL].node(false);
        let size = self.rng.size(12_000.0, 1.2, 800, 15_000_000);
        let mut conn = self.tcp_open(t, c, m, 587);
        let ehlo = self.hosts[host].fqdn();
        self.smtp(&mut conn, &format!("mail.{MAIL_DOMAIN}"), &ehlo, size);
        if self.rng.chance(0.65) {
            let tr = conn.t + self.rng.range(20 * MS, 2 * SEC);
            self.relay_out(tr, size);
        }
    }

    fn monitor_dns(&mut self, t: i64) {
        let mon = self.hosts[MON].node(false);
        let mut t = self.lookup_local(t, mon, MAIL_DOMAIN, dns_type::SOA);
        t = self.lookup_local(t, mon, MAIL_DOMAIN, dns_type::NS);
        t = self.lookup_local(t, mon, &format!("www.{MAIL_DOMAIN}"), dns_type::A);
        // Website check.
        let s = ext_node(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)), 22 * MS);
        let mut conn = self.tcp_open(t, mon, s, 443);
        self.tls_handshake(&mut conn, &format!("www.{MAIL_DOMAIN}"));
        self.tls_exchanges(&mut conn, &[(220, 14_000, 0)]);
        self.tcp_close(&mut conn, 0, false, false);
    }
}

// ---------------------------------------------------------------------------
// Anomalies
// ---------------------------------------------------------------------------

/// Ports that answer a SYN on the scanned hosts.
fn open_ports(host: usize) -> &'static [u16] {
    match host {
        FS => &[22, 135, 139, 443, 445],
        MAIL => &[22, 25, 110, 143, 443, 465, 587, 993, 995],
        _ => &[135, 139, 445],
    }
}

impl<W: Write> Gen<W> {
    /// One tunnelled query: data encoded in two long random labels.
    fn tunnel_query(&mut self, t: i64) {
        let w = self.plan.tunnel_ws;
        let c = self.hosts[self.ws[w].host].node(false);
        self.tunnel_seq += 1;
        let l1: String = (0..56).map(|_| char::from(BASE32[self.rng.below(32)])).collect();
        let l2: String = format!("{:04x}", self.tunnel_seq & 0xffff).chars().chain((0..20).map(|_| char::from(HEX[self.rng.below(16)]))).collect();
        let qname = format!("{l1}.{l2}.{TUNNEL_DOMAIN}");
        let (qtype, rd) = if self.rng.chance(0.6) {
            let n = self.rng.range(140, 250) as usize;
            let text: Vec<u8> = (0..n).map(|_| BASE32[self.rng.below(32)]).collect();
            (dns_type::TXT, Rd::Txt(vec![text]))
        } else {
            let n = self.rng.range(100, 220) as usize;
            let r = self.pool_bytes(n);
            (dns_type::NULL, Rd::Null(self.pool[r].to_vec()))
        };
        let ans = Answer::records(vec![Rr::new(qname.clone(), 0, rd)]);
        self.lookup(t, c, RES1, &qname, qtype, &ans, false, false);
    }

    /// A SYN scan of ~1000 ports on each target, in random order.
    fn scan(&mut self, t: i64) {
        let sc = self.hosts[self.ws[self.plan.scan_ws].host].node(false);
        let sport = self.rng.range(40000, 60000) as u16;
        let mut tt = t;
        let targets = self.plan.scan_targets.clone();
        for target in targets {
            let tn = self.hosts[target].node(false);
            let open = open_ports(target);
            let filtered = !self.hosts[target].server;
            let mut ports = self.plan.scan_ports.clone();
            for i in (1..ports.len()).rev() {
                let j = self.rng.below(i + 1);
                ports.swap(i, j);
            }
            for p in ports {
                let isn = self.rng.u32();
                let syn = L4::Tcp { sp: sport, dp: p, seq: isn, ack: 0, flags: tcp_flags::SYN, win: 1024, opts: TcpOpts::None, offload: false };
                self.emit(tt, &sc, &tn, syn, &[], false, 0);
                let tr = tt + 2 * tn.delay + self.rng.range(10 * US, 60 * US);
                if open.contains(&p) {
                    let sa = L4::Tcp {
                        sp: p,
                        dp: sport,
                        seq: self.rng.u32(),
                        ack: isn.wrapping_add(1),
                        flags: tcp_flags::SYN | tcp_flags::ACK,
                        win: 65160,
                        opts: TcpOpts::SynAck,
                        offload: false,
                    };
                    self.emit(tr, &tn, &sc, sa, &[], false, 0);
                    let rst = L4::Tcp {
                        sp: sport,
                        dp: p,
                        seq: isn.wrapping_add(1),
                        ack: 0,
                        flags: tcp_flags::RST,
                        win: 0,
                        opts: TcpOpts::None,
                        offload: false,
                    };
                    self.emit(tr + 2 * sc.delay + 5 * US, &sc, &tn, rst, &[], false, 0);
                } else if !filtered {
                    let ra = L4::Tcp {
                        sp: p,
                        dp: sport,
                        seq: 0,
                        ack: isn.wrapping_add(1),
                        flags: tcp_flags::RST | tcp_flags::ACK,
                        win: 0,
                        opts: TcpOpts::None,
                        offload: false,
                    };
                    self.emit(tr, &tn, &sc, ra, &[], false, 0);
                }
                tt += self.rng.range(300 * US, 3 * MS);
            }
            tt += self.rng.range(SEC, 5 * SEC);
        }
    }

    /// One check-in: a short connection with fixed-size messages.
    fn beacon(&mut self, t: i64) {
        let c = self.hosts[self.ws[self.plan.beacon_ws].host].node(false);
        let s = ext_node(IpAddr::V4(BEACON_IP), 38 * MS);
        let mut conn = self.tcp_open(t, c, s, BEACON_PORT);
        let mut req = vec![0x17, 0x03, 0x03, 0x00, 0xb0];
        let r = self.pool_bytes(0xb0);
        req.extend_from_slice(&self.pool[r]);
        self.tcp_stream(&mut conn, true, 0, &Src::head(req), SEG_REQ, 0);
        let mut resp = vec![0x17, 0x03, 0x03, 0x00, 0x50];
        let r = self.pool_bytes(0x50);
        resp.extend_from_slice(&self.pool[r]);
        self.tcp_stream(&mut conn, false, 2 * MS, &Src::head(resp), SEG_REQ, 0);
        self.tcp_close(&mut conn, 3 * MS, false, false);
    }

    /// A quarter of a gigabyte up to a rare address, in TSO-sized segments.
    fn exfil(&mut self, t: i64) {
        let c = self.hosts[self.ws[self.plan.exfil_ws].host].node(false);
        let ans = Answer::records(vec![Rr::new(EXFIL_DOMAIN, 60, Rd::A(EXFIL_IP))]);
        let t1 = self.lookup(t, c, RES1, EXFIL_DOMAIN, dns_type::A, &ans, false, false);
        let s = ext_node(IpAddr::V4(EXFIL_IP), 44 * MS);
        let mut conn = self.tcp_open(t1, c, s, 443);
        self.tls_handshake(&mut conn, EXFIL_DOMAIN);
        let total = self.rng.range(240_000_000, 270_000_000) as usize;
        // The capture shows the sender's TSO super-segments (with the
        // pseudo-header-only checksum the NIC completes), which keeps the packet count small.
        let seg = Seg { mss: 65_480, ack_every: 4, ack_last: true, cwnd: (4, 8), offload: true };
        self.tcp_stream(&mut conn, true, 5 * MS, &Src::body(Style::Tls, total), seg, 0);
        self.tcp_stream(&mut conn, false, MS, &Src::body(Style::Tls, 90), SEG_RESP, 0);
        self.tcp_close(&mut conn, 20 * MS, false, false);
    }

    /// Malware walking its domain-generation list until one name resolves.
    fn dga(&mut self, t: i64) {
        let c = self.hosts[self.ws[self.plan.dga_ws].host].node(false);
        let names = std::mem::take(&mut self.plan.dga_names);
        let mut tt = t;
        let mut connected = false;
        for (name, ip) in &names {
            let ans = match ip {
                Some(a) => Answer::records(vec![Rr::new(name.clone(), 300, Rd::A(*a))]),
                None => Answer::nx(&zone_of(name)),
            };
            let ready = self.lookup(tt, c, RES1, name, dns_type::A, &ans, false, false);
            if let (Some(a), false) = (ip, connected) {
                connected = true;
                let mut conn = self.tcp_open(ready, c, ext_node(IpAddr::V4(*a), 61 * MS), 443);
                self.tls_handshake(&mut conn, name);
                self.tls_exchanges(&mut conn, &[(310, 1250, 0)]);
                self.tcp_close(&mut conn, 40 * MS, false, false);
            }
            tt = ready.max(tt) + 50 * MS + self.rng.exp_ns(1600 * MS);
        }
        self.plan.dga_names = names;
    }
}

// ---------------------------------------------------------------------------
// Schedule and dispatch
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Jobs {
    v: Vec<Sched>,
}

impl Jobs {
    fn add(&mut self, ts: i64, job: Job) {
        let seq = self.v.len() as u64;
        self.v.push(Sched { ts, seq, job });
    }

    /// Poisson arrivals at `per_hour` in [from, to), thinned by `keep`.
    fn poisson(&mut self, r: &mut Rng, from: i64, to: i64, per_hour: f64, keep: impl Fn(i64) -> f64, job: Job) {
        if per_hour <= 0.0 {
            return;
        }
        let mean = (HOUR as f64 / per_hour) as i64;
        let mut t = from + r.exp_ns(mean);
        while t < to {
            if r.chance(keep(t)) {
                self.add(t, job);
            }
            t += r.exp_ns(mean).max(1);
        }
    }

    /// Every `every` (± `jitter`) in [from, to).
    fn periodic(&mut self, r: &mut Rng, from: i64, to: i64, every: i64, jitter: i64, job: Job) {
        let mut t = from;
        while t < to {
            self.add(t, job);
            t += (every + r.range(-jitter, jitter + 1)).max(SEC);
        }
    }
}

impl<W: Write> Gen<W> {
    /// Draws every workstation's day and every job.
    /// The day's jobs. Two streams: `r` draws what stays the same every day
    /// (the compromised machines, each user's habits) and `j` the day's own
    /// events, so day N of a seed is the same office on another day.
    fn schedule(&mut self, seed: u64, day: u32, anomalies: bool) -> Vec<Sched> {
        let mut r = Rng::new(seed ^ 0x005e_ed0f_da7a);
        let mut j = Rng::new(seed ^ 0x005e_ed0f_da7a ^ u64::from(day).wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
        let d0 = self.start;
        let end = d0 + DAY;
        let at = |h: f64| d0 + (h * HOUR as f64) as i64;
        let scale = self.scale;
        let every = |base: i64| ((base as f64 / scale) as i64).clamp(SEC, DAY);
        let nws = self.hosts.len() - N_SERVERS;

        // Anomaly hosts: distinct workstations.
        let mut picks: Vec<usize> = Vec::new();
        while picks.len() < 6 {
            let w = r.below(nws);
            if !picks.contains(&w) {
                picks.push(w);
            }
        }
        let (tunnel_ws, scan_ws, beacon_ws, exfil_ws, dga_ws, scanned_ws) = (picks[0], picks[1], picks[2], picks[3], picks[4], picks[5]);

        let mut jobs = Jobs::default();
        for w in 0..nws {
            let host = N_SERVERS + w;
            let mut present = j.chance(0.94);
            let mut arrive = at(j.normal().mul_add(0.55, 8.4).clamp(6.8, 10.5));
            let mut leave = (arrive + (j.normal().mul_add(0.8, 8.9) * HOUR as f64) as i64).clamp(arrive + 5 * HOUR, at(22.5));
            let ls = at(j.f64().mul_add(1.4, 11.8));
            let lunch = (ls, ls + j.range(25 * MIN, 65 * MIN));
            let mut always_on = r.chance(0.3);
            if [tunnel_ws, beacon_ws, exfil_ws].contains(&w) {
                always_on = true;
            }
            if [dga_ws, scan_ws].contains(&w) {
                present = true;
                arrive = arrive.min(at(9.5));
                leave = leave.max(at(16.0));
            }
            let proxied = r.chance(0.25);
            let v6 = self.hosts[host].ip6.is_some();
            let activity = r.lognormal(1.0, 0.45);
            self.ws.push(Ws { host, present, arrive, leave, always_on, proxied, v6, cache: HashMap::new(), mail: None, fs_known: false });
            if present {
                jobs.add(arrive, Job::Boot(w));
                jobs.add(leave, Job::Leave(w));
                let in_lunch = move |t: i64| if t >= lunch.0 && t < lunch.1 { 0.35 } else { 1.0 };
                jobs.poisson(&mut j, arrive + 2 * MIN, leave, BROWSE_PER_HOUR * activity * scale, in_lunch, Job::Browse(w));
                jobs.poisson(&mut j, arrive + 5 * MIN, leave, FILE_PER_HOUR * activity * scale, in_lunch, Job::FileWork(w));
                let hours = (leave - arrive) as f64 / HOUR as f64;
                jobs.poisson(&mut j, arrive + 3 * MIN, leave, MAIL_FETCH_PER_DAY * scale / hours, |_| 1.0, Job::MailFetch(w));
                jobs.poisson(&mut j, arrive + 10 * MIN, leave, MAIL_SEND_PER_DAY * activity * scale / hours, |_| 1.0, Job::MailSend(w));
                jobs.periodic(&mut j, arrive + 3 * MIN, leave, every(IMAP_IDLE_EVERY), 20 * SEC, Job::MailIdle(w));
            }
            let (on_from, on_to) = if always_on { (d0 + j.range(0, HOUR), end) } else { (arrive + 30 * MIN, leave) };
            if always_on || present {
                jobs.periodic(&mut j, on_from, on_to, every(WS_NTP_EVERY), 10 * SEC, Job::WsNtp(w));
                let phase = on_from + j.range(0, HOUR);
                jobs.periodic(&mut j, phase, on_to, every(2 * HOUR), 10 * MIN, Job::Background(w));
            }
            let phase = d0 + j.range(0, PING_WS_EVERY);
            jobs.periodic(&mut j, phase, end, every(PING_WS_EVERY), 0, Job::PingWs(w));
        }

        // Servers.
        for i in [RES1, RES2, FS, MAIL, PROXY] {
            let phase = d0 + j.range(0, PING_SERVER_EVERY);
            jobs.periodic(&mut j, phase, end, every(PING_SERVER_EVERY), 0, Job::PingServer(i));
        }
        for i in 0..N_SERVERS {
            let phase = d0 + j.range(0, SERVER_NTP_EVERY);
            jobs.periodic(&mut j, phase, end, every(SERVER_NTP_EVERY), 2 * SEC, Job::ServerNtp(i));
        }
        let (busy, quiet) = INBOUND_MAIL_PER_HOUR;
        let (b0, b1) = (at(8.0), at(18.0));
        jobs.poisson(&mut j, d0, end, busy * scale, move |t| if t >= b0 && t < b1 { 1.0 } else { quiet / busy }, Job::InboundMail);
        let phase = d0 + j.range(0, HOUR);
        jobs.periodic(&mut j, phase, end, every(HOUR), 0, Job::MonitorDns);

        // Anomalies (a clean day keeps the plan empty: no anomaly job runs).
        if !anomalies {
            let mut v = jobs.v;
            v.retain(|s| s.ts >= d0 && s.ts < end);
            v.sort_by_key(|s| (s.ts, s.seq));
            return v;
        }
        let ts0 = at(1.0 + 10.0 / 60.0) + j.range(0, 15 * MIN);
        let plan = &mut self.plan;
        plan.tunnel_ws = tunnel_ws;
        plan.tunnel = (ts0, ts0 + 95 * MIN);
        let mut t = ts0;
        while t < plan.tunnel.1 {
            jobs.add(t, Job::Tunnel);
            t += 300 * MS + j.exp_ns(3500 * MS);
        }
        plan.scan_ws = scan_ws;
        plan.scan_at = at(14.0 + 5.0 / 60.0) + j.range(0, 20 * MIN);
        plan.scan_targets = vec![FS, MAIL, N_SERVERS + scanned_ws];
        plan.scan_ports = (1..=1000).collect();
        jobs.add(plan.scan_at, Job::Scan);
        plan.beacon_ws = beacon_ws;
        let mut t = d0 + 20 * SEC + j.range(0, 40 * SEC);
        while t < end {
            jobs.add(t, Job::Beacon);
            t += 60 * SEC + j.range(-6 * SEC, 6 * SEC + 1);
        }
        plan.exfil_ws = exfil_ws;
        plan.exfil_at = at(3.0) + j.range(0, 90 * SEC);
        jobs.add(plan.exfil_at, Job::Exfil);
        plan.dga_ws = dga_ws;
        plan.dga_at = at(10.0 + 40.0 / 60.0) + j.range(0, 15 * MIN);
        jobs.add(plan.dga_at, Job::Dga);
        const TLDS: &[&str] = &["com", "net", "org", "info", "biz", "top", "xyz", "ru"];
        let resolving: Vec<usize> = (0..6).map(|_| 20 + j.below(180)).collect();
        plan.dga_names = (0..200)
            .map(|i| {
                let len = j.range(10, 19) as usize;
                let label: String = (0..len).map(|_| char::from(b'a' + j.below(26) as u8)).collect();
                let name = format!("{label}.{}", j.pick(TLDS));
                let ip = resolving.contains(&i).then(|| Ipv4Addr::new(203, 0, 113, 131 + j.below(8) as u8));
                (name, ip)
            })
            .collect();

        let mut v = jobs.v;
        v.retain(|s| s.ts >= d0 && s.ts < end);
        v.sort_by_key(|s| (s.ts, s.seq));
        v
    }

    fn run(&mut self, t: i64, job: Job) {
        match job {
            Job::Boot(w) => self.boot(t, w),
            Job::Leave(w) => {
                if let Some(mut conn) = self.ws[w].mail.take() {
                    let idle = (t - conn.t).max(0);
                    self.tcp_close(&mut conn, idle, false, false);
                }
            }
            Job::Browse(w) => self.browse(t, w),
            Job::MailIdle(w) => self.mail_op(t, w, false),
            Job::MailFetch(w) => self.mail_op(t, w, true),
            Job::MailSend(w) => self.mail_send(t, w),
            Job::FileWork(w) => {
                let ops = self.rng.count(4.0, 30);
                self.file_work(t, w, ops);
            }
            Job::WsNtp(w) => {
                let c = self.hosts[self.ws[w].host].node(false);
                let dc = self.hosts[RES1].node(false);
                self.ntp(t, c, dc, 3);
            }
            Job::Background(w) => self.background(t, w),
            Job::PingWs(w) => {
                let on = self.ws[w].is_on(t);
                let h = self.ws[w].host;
                let seq = ((t - self.start) / PING_WS_EVERY) as u16;
                let v6 = self.hosts[h].ip6.is_some() && seq % 2 == 1;
                let (mon, dst) = (self.hosts[MON].node(v6), self.hosts[h].node(v6));
                self.ping(t, mon, dst, 0x4000 + h as u16, seq, on);
            }
            Job::PingServer(i) => {
                let seq = ((t - self.start) / PING_SERVER_EVERY) as u16;
                let (mon, dst) = (self.hosts[MON].node(false), self.hosts[i].node(false));
                self.ping(t, mon, dst, 0x100 + i as u16, seq, true);
            }
            Job::ServerNtp(i) => {
                let c = self.hosts[i].node(false);
                if i == RES1 || i == RES2 {
                    let s = ext_node(IpAddr::V4(*self.rng.pick(&NTP_POOL)), 0);
                    self.ntp(t, c, s, 2);
                } else {
                    let dc = self.hosts[RES1].node(false);
                    self.ntp(t, c, dc, 3);
                }
            }
            Job::InboundMail => self.inbound_mail(t),
            Job::MonitorDns => self.monitor_dns(t),
            Job::Tunnel => self.tunnel_query(t),
            Job::Scan => self.scan(t),
            Job::Beacon => self.beacon(t),
            Job::Exfil => self.exfil(t),
            Job::Dga => self.dga(t),
        }
    }

    fn truth(&self, cfg: &DemoConfig) -> GroundTruth {
        let st = &self.sink.stats;
        let ip = |w: usize| self.hosts[self.ws[w].host].ip4.to_string();
        let host_ip = |h: usize| self.hosts[h].ip4.to_string();
        let clock = |ns: i64| {
            // Saturating: an anomaly with no packet (a clean day) has no times.
            let s = ns.saturating_sub(self.start).max(0) / SEC;
            format!("{:02}:{:02}", s / 3600, s / 60 % 60)
        };
        let p = &self.plan;
        let anomaly =
            |tag: u8, name: &str, description: String, kind: &str, ips: Vec<String>, shared: Vec<String>, domains: Vec<String>, ports: Vec<u16>| {
                let s = st[usize::from(tag)];
                Anomaly {
                    name: name.to_string(),
                    description,
                    kind: kind.to_string(),
                    ips,
                    shared_ips: shared,
                    domains,
                    ports,
                    start_ns: if s.packets > 0 { s.first } else { 0 },
                    end_ns: if s.packets > 0 { s.last } else { 0 },
                    packets: s.packets,
                    ip_bytes: s.ip_bytes,
                    flows: s.flows,
                    dns_messages: s.dns,
                }
            };
        let resolvers = vec![host_ip(RES1), EXT_RESOLVERS[0].to_string(), EXT_RESOLVERS[1].to_string()];
        let s_t = st[usize::from(TAG_TUNNEL)];
        let s_d = st[usize::from(TAG_DGA)];
        let mut dga_ips: Vec<String> = p.dga_names.iter().filter_map(|(_, a)| a.map(|a| a.to_string())).collect();
        dga_ips.sort();
        dga_ips.dedup();
        let anomalies = vec![
            anomaly(
                TAG_TUNNEL,
                "dns_tunnel",
                format!(
                    "DNS tunnelling: {} sends {} TXT/NULL queries with long random labels under {TUNNEL_DOMAIN} between {} and {}",
                    ip(p.tunnel_ws),
                    s_t.dns / 4,
                    clock(s_t.first),
                    clock(s_t.last)
                ),
                "dns",
                vec![ip(p.tunnel_ws)],
                resolvers.clone(),
                vec![TUNNEL_DOMAIN.to_string()],
                vec![53],
            ),
            anomaly(
                TAG_SCAN,
                "port_scan",
                format!("TCP SYN scan: {} probes ports 1-1000 on {} hosts at {}", ip(p.scan_ws), p.scan_targets.len(), clock(p.scan_at)),
                "flow",
                vec![ip(p.scan_ws)],
                p.scan_targets.iter().map(|&h| host_ip(h)).collect(),
                Vec::new(),
                p.scan_ports.clone(),
            ),
            anomaly(
                TAG_BEACON,
                "beaconing",
                format!("C2 beaconing: {} connects to {BEACON_IP}:{BEACON_PORT} every 60 s ± 6 s all day with fixed-size messages", ip(p.beacon_ws)),
                "flow",
                vec![ip(p.beacon_ws), BEACON_IP.to_string()],
                Vec::new(),
                Vec::new(),
                vec![BEACON_PORT],
            ),
            anomaly(
                TAG_EXFIL,
                "exfil_upload",
                format!("Exfiltration: {} uploads ~250 MB to {EXFIL_IP}:443 at {}", ip(p.exfil_ws), clock(p.exfil_at)),
                "flow",
                vec![ip(p.exfil_ws), EXFIL_IP.to_string()],
                resolvers.clone(),
                vec![EXFIL_DOMAIN.to_string()],
                vec![443],
            ),
            anomaly(
                TAG_DGA,
                "dga",
                format!(
                    "DGA: {} looks up {} random-looking domains between {} and {}, most NXDOMAIN, and connects to the first that resolves",
                    ip(p.dga_ws),
                    p.dga_names.len(),
                    clock(s_d.first),
                    clock(s_d.last)
                ),
                "dns",
                std::iter::once(ip(p.dga_ws)).chain(dga_ips).collect(),
                resolvers,
                p.dga_names.iter().map(|(n, _)| n.clone()).collect(),
                vec![53, 443],
            ),
        ];
        let anomalies = if cfg.anomalies { anomalies } else { Vec::new() };
        let sum = |f: fn(&Stats) -> u64| st.iter().map(f).sum::<u64>();
        GroundTruth {
            config: cfg.clone(),
            hosts: self.hosts.len(),
            first_ns: st.iter().map(|s| s.first).min().unwrap_or(0),
            last_ns: st.iter().map(|s| s.last).max().unwrap_or(0),
            total_packets: sum(|s| s.packets),
            total_captured_bytes: sum(|s| s.cap_bytes),
            total_ip_bytes: sum(|s| s.ip_bytes),
            total_flows: sum(|s| s.flows),
            total_dns_messages: sum(|s| s.dns),
            anomalies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small day: few hosts, a twentieth of the benign volume (anomalies are full size).
    fn small() -> DemoConfig {
        DemoConfig { seed: 7, hosts: 24, scale: 0.05, ..DemoConfig::default() }
    }

    fn gen_bytes(cfg: &DemoConfig) -> (Vec<u8>, GroundTruth) {
        let mut out = Vec::new();
        let truth = generate(cfg, &mut out).expect("generate into memory");
        (out, truth)
    }

    /// Walks the pcap records (nanosecond, little-endian, as written).
    fn records(pcap: &[u8]) -> Vec<(i64, &[u8], u32)> {
        assert_eq!(&pcap[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        let mut v = Vec::new();
        let mut off = 24;
        let u32_at = |o: usize| u32::from_le_bytes([pcap[o], pcap[o + 1], pcap[o + 2], pcap[o + 3]]);
        while off < pcap.len() {
            let ts = i64::from(u32_at(off)) * SEC + i64::from(u32_at(off + 4));
            let cap = u32_at(off + 8) as usize;
            let orig = u32_at(off + 12);
            v.push((ts, &pcap[off + 16..off + 16 + cap], orig));
            off += 16 + cap;
        }
        assert_eq!(off, pcap.len());
        v
    }

    #[test]
    fn same_config_same_bytes() {
        let (a, ta) = gen_bytes(&small());
        let (b, tb) = gen_bytes(&small());
        assert_eq!(fnv(&a), fnv(&b));
        assert_eq!(a.len(), b.len());
        assert_eq!(ta, tb);
        let (c, _) = gen_bytes(&DemoConfig { seed: 8, ..small() });
        assert_ne!(fnv(&a), fnv(&c), "another seed gives another day");
    }

    #[test]
    fn timestamps_ordered_and_counts_match() {
        let cfg = small();
        let (pcap, truth) = gen_bytes(&cfg);
        let recs = records(&pcap);
        assert_eq!(recs.len() as u64, truth.total_packets);
        assert!(recs.windows(2).all(|w| w[0].0 <= w[1].0), "timestamps go back");
        assert_eq!(recs.first().map(|r| r.0), Some(truth.first_ns));
        assert_eq!(recs.last().map(|r| r.0), Some(truth.last_ns));
        assert!(truth.first_ns >= cfg.start_ns && truth.first_ns < cfg.start_ns + HOUR);
        let cap: u64 = recs.iter().map(|r| r.1.len() as u64).sum();
        assert_eq!(cap, truth.total_captured_bytes);
        // IP bytes from the headers: IPv4 total length or 40 + IPv6 payload length.
        let mut ip_bytes = 0u64;
        for (_, d, orig) in &recs {
            assert!(*orig as usize >= d.len());
            let mut l2 = 14;
            if d[12..14] == [0x81, 0x00] {
                assert_eq!(u16::from_be_bytes([d[14], d[15]]) & 0xfff, SERVER_VLAN);
                l2 = 18;
            }
            ip_bytes += match d[l2] >> 4 {
                4 => u64::from(u16::from_be_bytes([d[l2 + 2], d[l2 + 3]])),
                6 => 40 + u64::from(u16::from_be_bytes([d[l2 + 4], d[l2 + 5]])),
                v => panic!("IP version {v}"),
            };
        }
        assert_eq!(ip_bytes, truth.total_ip_bytes);
        // Per-anomaly counts add up and lie inside the totals.
        let sum: u64 = truth.anomalies.iter().map(|a| a.packets).sum();
        assert!(sum < truth.total_packets);
        assert_eq!(truth.anomalies.len(), 5);
        for a in &truth.anomalies {
            assert!(a.packets > 0 && a.flows > 0, "{}: nothing written", a.name);
            assert!(a.start_ns <= a.end_ns);
            assert!(!a.ips.is_empty());
        }
    }

    #[test]
    fn anomalies_have_their_shape() {
        let (_, t) = gen_bytes(&small());
        let by = |n: &str| t.anomalies.iter().find(|a| a.name == n).cloned().expect("anomaly present");
        let tunnel = by("dns_tunnel");
        assert_eq!(tunnel.kind, "dns");
        // Each tunnelled query is 4 messages: client→resolver, forwarded, answer, answer.
        assert_eq!(tunnel.dns_messages % 4, 0);
        assert!((1000..=2500).contains(&(tunnel.dns_messages / 4)), "{} queries", tunnel.dns_messages / 4);
        assert!(tunnel.end_ns - tunnel.start_ns < 2 * HOUR);
        let night = (tunnel.start_ns - t.config.start_ns) / HOUR;
        assert!((1..3).contains(&night), "tunnel starts at hour {night}");
        let scan = by("port_scan");
        assert_eq!(scan.ports.len(), 1000);
        assert!(scan.flows >= 3000, "scan flows {}", scan.flows);
        let beacon = by("beaconing");
        assert!((1300..=1500).contains(&beacon.flows), "beacon flows {}", beacon.flows);
        assert_eq!(beacon.packets, beacon.flows * 8);
        let exfil = by("exfil_upload");
        assert!(exfil.ip_bytes > 200_000_000 && exfil.packets < 8000, "{} bytes in {} packets", exfil.ip_bytes, exfil.packets);
        assert_eq!((exfil.start_ns - t.config.start_ns) / HOUR, 3);
        let dga = by("dga");
        assert_eq!(dga.domains.len(), 200);
        assert!(dga.dns_messages >= 800);
    }

    /// A clean day: no anomaly traffic at all; a later day is the same
    /// office (same hosts) with its own events, 24 h later.
    #[test]
    fn baseline_and_later_days() {
        let (clean, t0) = gen_bytes(&DemoConfig { anomalies: false, ..small() });
        assert!(t0.anomalies.is_empty());
        let (with, t1) = gen_bytes(&small());
        assert!(t0.total_packets < t1.total_packets);
        // No packet of the clean day touches an anomaly's dedicated external peers.
        let peers: Vec<[u8; 4]> = [BEACON_IP, EXFIL_IP].iter().map(|ip| ip.octets()).collect();
        let touches = |pcap: &[u8]| {
            records(pcap).iter().any(|(_, d, _)| {
                let l2 = if d[12..14] == [0x81, 0x00] { 18 } else { 14 };
                d[l2] >> 4 == 4 && peers.iter().any(|p| d[l2 + 12..l2 + 16] == *p || d[l2 + 16..l2 + 20] == *p)
            })
        };
        assert!(touches(&with) && !touches(&clean));
        let (next, t2) = gen_bytes(&DemoConfig { day: 1, anomalies: false, ..small() });
        assert_ne!(fnv(&next), fnv(&clean), "another day, other events");
        assert_eq!(t2.hosts, t0.hosts);
        assert!(t2.first_ns >= t0.config.start_ns + DAY && t2.last_ns < t0.config.start_ns + 2 * DAY);
        // Same order of magnitude of traffic: the same office.
        let ratio = t2.total_packets as f64 / t0.total_packets as f64;
        assert!((0.5..2.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn odd_configs() {
        // Too few hosts are raised to the minimum; a tiny scale leaves mostly the anomalies.
        let (_, t) = gen_bytes(&DemoConfig { seed: 1, hosts: 0, scale: 0.001, ..DemoConfig::default() });
        assert_eq!(t.hosts, 16);
        let anomalous: u64 = t.anomalies.iter().map(|a| a.packets).sum();
        assert!(anomalous * 2 > t.total_packets, "{anomalous} of {}", t.total_packets);
        for scale in [0.0, -1.0, f64::NAN] {
            assert!(generate(&DemoConfig { scale, ..small() }, io::sink()).is_err());
        }
    }

    /// Runs tshark on a generated day: every packet readable, none malformed.
    #[test]
    fn tshark_reads_the_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("day.pcap");
        let file = std::fs::File::create(&path).expect("create");
        let truth = generate(&small(), io::BufWriter::new(file)).expect("generate");
        let stat = std::process::Command::new("tshark").arg("-r").arg(&path).args(["-q", "-z", "io,stat,0"]).output();
        let stat = match stat {
            Ok(o) => o,
            Err(e) => {
                println!("skipping: cannot run tshark ({e})");
                return;
            }
        };
        let text = String::from_utf8_lossy(&stat.stdout);
        assert!(stat.status.success(), "tshark failed: {}", String::from_utf8_lossy(&stat.stderr));
        let frames = text.lines().find(|l| l.contains("<>")).and_then(|l| l.split('|').nth(2)).and_then(|f| f.trim().parse::<u64>().ok());
        assert_eq!(frames, Some(truth.total_packets), "io,stat output:\n{text}");
        let bad = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-Y", "_ws.malformed || _ws.expert.severity == error"])
            .output()
            .expect("tshark");
        let bad_text = String::from_utf8_lossy(&bad.stdout);
        assert!(bad_text.trim().is_empty(), "malformed packets:\n{}", bad_text.lines().take(20).collect::<Vec<_>>().join("\n"));
    }

    /// Default-size day; run with `--ignored --nocapture` (release) to see volume and speed.
    #[test]
    #[ignore = "a full day takes a while in debug builds"]
    fn default_day_volume() {
        let t = std::time::Instant::now();
        let mut sink = io::sink();
        let truth = generate(&DemoConfig::default(), &mut sink).expect("generate");
        println!("{:.2} s", t.elapsed().as_secs_f64());
        println!(
            "{}",
            serde_json::to_string_pretty(&truth)
                .expect("json")
                .lines()
                .filter(|l| !l.trim_start().starts_with('"') || !l.contains('.'))
                .take(80)
                .collect::<Vec<_>>()
                .join("\n")
        );
        println!(
            "packets {} flows {} dns {} ip_bytes {} captured {}",
            truth.total_packets, truth.total_flows, truth.total_dns_messages, truth.total_ip_bytes, truth.total_captured_bytes
        );
        assert!((300_000..=600_000).contains(&truth.total_packets));
    }
}
