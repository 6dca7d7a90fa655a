//! `osprey ingest proxy` end to end: a generated ELFF log goes through
//! ingest → train → score → top, and damaged lines give exit code 1 with the
//! reason in the summary.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output};

fn osprey(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_osprey")).args(args).env_remove("OSPREY_CONFIG").output().expect("osprey runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const FIELDS: &str = "date time time-taken c-ip sc-status s-action sc-bytes cs-bytes cs-method cs-uri-scheme cs-host \
                      cs-uri-port cs-uri-path cs-uri-query rs(Content-Type) cs(User-Agent)";

/// One day of office browsing by 40 clients, plus one client that polls a
/// random-looking host with a rare user agent and long encoded queries. The
/// odd client is consistent with itself, so its own topic explains it under
/// Spot's formula; the default scoring caps it because no other client does
/// the same (`osprey_scorer::score::others_share`).
fn write_log(path: &Path) {
    let mut s = format!("#Software: SGOS 6.7\n#Version: 1.0\n#Fields: {FIELDS}\n");
    let sites = [("intranet.example.test", "/index.html"), ("news.example.test", "/world/today.html"), ("cdn.example.test", "/static/app.js")];
    let ua = "\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/118.0\"";
    for hour in 8..18 {
        for client in 0..40u32 {
            for (i, (host, path)) in sites.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "2026-11-26 {hour:02}:{:02}:{:02} 40 198.18.1.{client} 200 TCP_HIT 5120 400 GET http {host} 80 {path} - text/html {ua}",
                    (client + i as u32 * 7) % 60,
                    client % 60
                );
            }
        }
    }
    for minute in 0..30 {
        let _ = writeln!(
            s,
            "2026-11-26 03:{minute:02}:00 12 198.18.9.9 200 TCP_NC_MISS 90 2900 POST http q7x9zk2vplw.example.test 8080 /c2/{minute} ?d=aGVsbG8gd29ybGQgdGhpcyBpcyBleGZpbHRyYXRpb24{minute} application/octet-stream \"curl/7.1\""
        );
    }
    std::fs::write(path, s).expect("test value");
}

#[test]
fn proxy_log_to_ranked_events() {
    let tmp = tempfile::tempdir().expect("test value");
    let log = tmp.path().join("access.log");
    write_log(&log);
    let data = tmp.path().join("data");
    let d = data.to_str().expect("test value");

    let o = osprey(&["ingest", "proxy", log.to_str().expect("test value"), "--data", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("records                1230"), "{}", stderr(&o));

    let o = osprey(&["train", "--data", d, "--kind", "proxy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = osprey(&["score", "--data", d, "--kind", "proxy", "--tol", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = osprey(&["top", "--data", d, "--kind", "proxy", "-n", "30", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).expect("test value");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 30);
    // Ranked from least probable; each row carries Spot's 8-part proxy word
    // and the fields of the line it came from.
    let mut last = f64::NEG_INFINITY;
    for (i, row) in rows.iter().enumerate() {
        assert!(row.starts_with(&format!("{{\"rank\":{},\"score\":", i + 1)), "{row}");
        let score: f64 = row.split("\"score\":").nth(1).expect("test value").split(',').next().expect("test value").parse().expect("test value");
        assert!(score >= last, "scores ascend: {out}");
        last = score;
        let word = row.split("\"word\":\"").nth(1).expect("test value").split('"').next().expect("test value");
        assert_eq!(word.split('_').count(), 8, "{word}");
        assert!(row.contains("\"clientip\":\"198.18.9.9\""), "the odd client's 30 lines rank first: {row}");
        assert!(row.contains("\"fulluri\":\""), "{row}");
        // Spot's parser gives hosts under .test no domain: class 0.
        assert!(word.starts_with("0_"), "{word}");
    }

    // Osprey's domain rules find the domain `example`, which all 41 clients
    // use (class 1); the model records the rules, so scoring builds the same
    // words without being told again.
    let o = osprey(&["train", "--data", d, "--kind", "proxy", "--domain-rules", "osprey"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = osprey(&["score", "--data", d, "--kind", "proxy", "--tol", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = osprey(&["top", "--data", d, "--kind", "proxy", "-n", "2000", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).expect("test value");
    assert_eq!(out.lines().count(), 1230, "every line scored");
    for row in out.lines() {
        let word = row.split("\"word\":\"").nth(1).expect("test value").split('"').next().expect("test value");
        assert!(word.starts_with("1_"), "{word}");
    }
}

#[test]
fn damaged_lines_are_counted_and_exit_1() {
    let tmp = tempfile::tempdir().expect("test value");
    let log = tmp.path().join("access.log");
    std::fs::write(
        &log,
        "#Fields: date time c-ip cs-host sc-bytes\n2026-11-26 07:00:00 198.18.0.1 a.example.test 10\n2026-11-26 07:00:01 198.18.0.1 \"unterminated 10\n2026-11-26 07:00:02 198.18.0.1 a.example.test lots\n",
    )
    .expect("test value");
    let data = tmp.path().join("data");
    let o = osprey(&["ingest", "proxy", log.to_str().expect("test value"), "--data", data.to_str().expect("test value")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("unbalanced_quote") && e.contains("bad_number") && e.contains("records                   1"), "{e}");

    let o = osprey(&["ingest", "proxy", log.to_str().expect("test value"), "--data", data.to_str().expect("test value"), "--format", "nonsense"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = osprey(&["ingest", "proxy", log.to_str().expect("test value"), "--data", data.to_str().expect("test value"), "--fields", "c-ip cs-host"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs `date` and `time`"), "{}", stderr(&o));
    let o = osprey(&["ingest", "proxy", "/nonexistent/access.log", "--data", data.to_str().expect("test value")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
