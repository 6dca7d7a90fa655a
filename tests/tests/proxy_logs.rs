//! Proxy-log ingest on the real logs in `../shared/data/proxy`.
//!
//! There is no independent parser to compare with, so each stored record is
//! checked against the raw line it came from, field by field, with a split
//! written here independently of `osprey_capture::proxylog` (Squid's native
//! format is plain whitespace-separated; the Blue Coat lines are checked
//! against values read off the file by hand). Every line must be stored or
//! counted as skipped, none lost.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use osprey_capture::proxylog::{ProxyFormat, ProxyIngestor, ProxySkip, ProxyStats};
use osprey_integration_tests::shared_data;
use osprey_segment::partition::{TimeRange, WriterConfig, read_all};
use osprey_segment::records::ProxyRecord;

/// The field order of Blue Coat's SGOS default `main` format, which the three
/// Metron lines use (they have no `#Fields:` header), plus one trailing field
/// that Metron's sample appended.
const SGOS_MAIN: &str = "date time time-taken c-ip sc-status s-action sc-bytes cs-bytes cs-method cs-uri-scheme \
     cs-host cs-uri-port cs-uri-path cs-uri-query cs-username cs-auth-group s-hierarchy s-supplier-name \
     rs(Content-Type) cs(Referer) cs(User-Agent) sc-filter-result cs-categories x-virus-id s-ip x-trailing";

fn proxy_dir() -> Option<PathBuf> {
    let dir = shared_data()?.join("proxy");
    dir.is_dir().then_some(dir)
}

fn ingest(files: &[PathBuf], format: ProxyFormat) -> (ProxyStats, Vec<ProxyRecord>) {
    let dir = tempfile::tempdir().expect("test value");
    let mut ing = ProxyIngestor::new(dir.path(), WriterConfig::default(), format).expect("test value");
    for f in files {
        ing.ingest_file(f).expect("test value");
    }
    let stats = ing.finish().expect("test value");
    let (mut recs, skipped) = read_all::<ProxyRecord>(dir.path(), TimeRange::default()).expect("test value");
    assert!(skipped.is_empty(), "segments unreadable: {skipped:?}");
    recs.sort_by(|a, b| (a.ts, &a.fulluri).cmp(&(b.ts, &b.fulluri)));
    (stats, recs)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).expect("test value").lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

#[test]
fn squid_native_logs_every_line_matches_its_source() {
    let Some(dir) = proxy_dir() else {
        eprintln!("skipping: ../shared/data/proxy is not present (set OSPREY_SHARED_DATA)");
        return;
    };
    let files: Vec<PathBuf> =
        ["beats__squid_access1.log", "beats__squid_access2.log", "metron__squid_SquidExampleOutput.log"].iter().map(|f| dir.join(f)).collect();
    let mut expected: Vec<Vec<String>> = Vec::new();
    for f in &files {
        expected.extend(lines(f).into_iter().map(|l| l.split_whitespace().map(str::to_string).collect()));
    }
    let (stats, recs) = ingest(&files, ProxyFormat::Auto);
    assert_eq!(stats.skipped_total(), 0, "{:?}", stats.skipped);
    assert_eq!(stats.records as usize, expected.len());
    assert_eq!(recs.len(), expected.len());

    let mut connects = 0;
    for f in &expected {
        // time elapsed client code/status bytes method URL user hierarchy/peer type
        let (secs, frac) = f[0].split_once('.').expect("test value");
        let ts = secs.parse::<i64>().expect("test value") * 1_000_000_000 + frac.parse::<i64>().expect("test value") * 1_000_000;
        let candidates: Vec<&ProxyRecord> = recs.iter().filter(|r| r.ts == ts && r.scbytes == f[4].parse::<i64>().expect("test value")).collect();
        assert!(!candidates.is_empty(), "no record for line {f:?}");
        let r = candidates.iter().find(|r| r.reqmethod == f[5] && r.duration == f[1].parse::<i64>().expect("test value")).expect("method/duration");
        assert_eq!(r.clientip, f[2].parse::<IpAddr>().ok());
        let (action, status) = f[3].split_once('/').expect("test value");
        assert_eq!((r.action.as_str(), r.respcode.as_str()), (action, status));
        assert_eq!(r.username, f[7]);
        assert_eq!(r.resconttype, f[9..].join(" "));
        // The URL, rebuilt from the stored parts, is what was logged.
        let url = &f[6];
        if f[5] == "CONNECT" {
            connects += 1;
            assert_eq!(format!("{}:{}", r.host, r.uriport), *url);
            assert_eq!((r.urischeme.as_str(), r.fulluri.as_str()), ("tcp", r.host.as_str()));
        } else {
            let query = if r.uriquery == "-" { "" } else { r.uriquery.as_str() };
            let default_port = matches!((r.urischeme.as_str(), r.uriport.as_str()), ("http", "80") | ("https", "443"));
            let port = if default_port && !url.contains(&format!(":{}/", r.uriport)) { String::new() } else { format!(":{}", r.uriport) };
            let path = if r.uripath == "/" && !url.trim_start_matches("http://").contains('/') { "" } else { r.uripath.as_str() };
            assert_eq!(format!("{}://{}{}{}{}", r.urischeme, r.host, port, path, query), *url, "{r:?}");
            let mut full = r.host.clone();
            if r.uripath.len() > 1 {
                full.push_str(&r.uripath);
            }
            if query.len() > 1 {
                full.push_str(query);
            }
            assert_eq!(r.fulluri, full);
        }
    }
    assert!(connects > 0, "the sample has CONNECT tunnels");
    // p_date/p_time are the UTC rendering of the epoch time.
    let first = recs.iter().find(|r| r.ts == 1_035_368_729_430_000_000).expect("test value");
    assert_eq!((first.p_date.as_str(), first.p_time.as_str()), ("2002-10-23", "10:25:29"));
}

fn bluecoat_expectations(recs: &[ProxyRecord]) {
    assert_eq!(recs.len(), 3);
    let by_client = |ip: &str| recs.iter().find(|r| r.clientip == ip.parse::<IpAddr>().ok()).expect("test value");
    let a = by_client("101.215.31.19");
    assert_eq!((a.p_date.as_str(), a.p_time.as_str(), a.duration), ("2016-05-16", "15:17:26", 283));
    assert_eq!((a.respcode.as_str(), a.action.as_str(), a.scbytes, a.csbytes), ("200", "TCP_NC_MISS", 375, 1046));
    assert_eq!((a.reqmethod.as_str(), a.urischeme.as_str(), a.host.as_str(), a.uriport.as_str()), ("GET", "http", "www.saavnarnia.com", "80"));
    assert_eq!(a.uripath, "/stats.php");
    assert_eq!(a.uriquery, "?ev=site:player:progressing:300&songid=RT6VpBOP&_t=1463411845618");
    assert_eq!(a.username, "qam351");
    assert_eq!(a.resconttype, "text/html;%20charset=UTF-8");
    assert!(a.useragent.starts_with("Mozilla/5.0 (Windows NT 6.1; WOW64)"), "{}", a.useragent);
    assert_eq!((a.filterresult.as_str(), a.webcat.as_str()), ("OBSERVED", "Entertainment;Audio/Video Clips"));
    assert_eq!(a.serverip, "170.237.230.7".parse::<IpAddr>().ok());
    assert_eq!(a.uriextension, "php");
    assert_eq!(a.fulluri, "www.saavnarnia.com/stats.php?ev=site:player:progressing:300&songid=RT6VpBOP&_t=1463411845618");
    let b = by_client("130.165.40.125");
    assert_eq!(
        (b.reqmethod.as_str(), b.urischeme.as_str(), b.host.as_str(), b.uriport.as_str()),
        ("CONNECT", "tcp", "2-edge-chat.facebook.com", "443")
    );
    assert_eq!((b.respcode.as_str(), b.action.as_str(), b.filterresult.as_str()), ("407", "TCP_DENIED", "DENIED"));
    assert_eq!(b.fulluri, "2-edge-chat.facebook.com");
    let c = by_client("109.28.23.255");
    assert_eq!((c.reqmethod.as_str(), c.useragent.as_str(), c.host.as_str()), ("POST", "Shockwave Flash", "165.202.134.178"));
}

#[test]
fn bluecoat_elff_by_field_list_and_by_header_agree() {
    let Some(dir) = proxy_dir() else {
        eprintln!("skipping: ../shared/data/proxy is not present (set OSPREY_SHARED_DATA)");
        return;
    };
    let file = dir.join("metron__bluecoat_GrokBluecoatProxyExampleOutput.log");
    let names: Vec<String> = SGOS_MAIN.split_whitespace().map(str::to_string).collect();
    let (stats, by_list) = ingest(std::slice::from_ref(&file), ProxyFormat::Elff(Some(names)));
    assert_eq!((stats.records, stats.skipped_total()), (3, 0));
    bluecoat_expectations(&by_list);

    // The same lines behind a hand-written header, read with auto-detection.
    let tmp = tempfile::tempdir().expect("test value");
    let with_header = tmp.path().join("bluecoat.log");
    let body = std::fs::read_to_string(&file).expect("test value");
    std::fs::write(&with_header, format!("#Software: SGOS 6.6\n#Version: 1.0\n#Fields: {SGOS_MAIN}\n{body}")).expect("test value");
    let (stats, by_header) = ingest(&[with_header], ProxyFormat::Auto);
    assert_eq!((stats.records, stats.comments, stats.skipped_total()), (3, 3, 0));
    assert_eq!(by_header, by_list);

    // Without a header, auto-detection falls back to Spot's positional layout
    // (what Spot assumed for every file), which these 26-field lines do not
    // fit: every line is counted, none is stored with shifted fields.
    let (stats, recs) = ingest(&[file], ProxyFormat::Auto);
    assert!(recs.is_empty());
    assert_eq!(stats.skipped.get(&ProxySkip::FieldCount), Some(&3));
}
