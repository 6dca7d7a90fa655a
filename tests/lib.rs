//! Helpers shared by the integration tests in `tests/*.rs`: locating the
//! shared real captures, running tshark as an oracle, and ingesting a file
//! into a throwaway data directory.
//!
//! Tests that need `../shared/data` or tshark print why they skip when either
//! is missing (a user's clone has no `../shared`; CI always has both).

use std::path::{Path, PathBuf};
use std::process::Command;

use osprey_capture::ingest::{IngestConfig, IngestStats, Ingestor};
use osprey_segment::partition::{TimeRange, read_all};
use osprey_segment::{DnsRecord, FlowRecord};

/// `../shared/data` next to the repository (or `$OSPREY_SHARED_DATA`), if present.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("OSPREY_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    dir.is_dir().then_some(dir)
}

/// Whether `tshark` can be run.
pub fn have_tshark() -> bool {
    Command::new("tshark").arg("-v").output().is_ok_and(|o| o.status.success())
}

/// Returns the shared data directory and whether tshark is present, or prints
/// why the calling test skips and returns `None`.
pub fn oracle_inputs(test: &str) -> Option<PathBuf> {
    let Some(data) = shared_data() else {
        println!("SKIP {test}: ../shared/data is not present (set OSPREY_SHARED_DATA to run it)");
        return None;
    };
    if !have_tshark() {
        println!("SKIP {test}: tshark is not installed (scripts/dev setup installs it)");
        return None;
    }
    Some(data)
}

/// Every capture file under `dir`, recursively, sorted.
pub fn captures_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs tshark with `args` on `file` and returns its stdout lines as bytes
/// (tshark prints name bytes above 0x7f raw, not as UTF-8).
pub fn tshark_raw(file: &Path, args: &[&str]) -> Vec<Vec<u8>> {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .expect("tshark runs");
    out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

/// Runs tshark with `args` on `file` and returns its stdout lines.
pub fn tshark(file: &Path, args: &[&str]) -> Vec<String> {
    tshark_raw(file, args).iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
}

/// The records of one ingested file.
#[derive(Debug)]
pub struct Ingested {
    /// Counters.
    pub stats: IngestStats,
    /// Flow records.
    pub flows: Vec<FlowRecord>,
    /// DNS records.
    pub dns: Vec<DnsRecord>,
}

/// Ingests `file` with `cfg` into a temporary directory and reads the records back.
pub fn ingest(file: &Path, cfg: IngestConfig) -> Ingested {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ing = Ingestor::new(dir.path(), cfg).expect("ingestor");
    ing.ingest_file(file, &mut |_, _| {}).expect("ingest");
    let stats = ing.finish().expect("finish");
    let (flows, s1) = read_all::<FlowRecord>(dir.path(), TimeRange::default()).expect("read flows");
    let (dns, s2) = read_all::<DnsRecord>(dir.path(), TimeRange::default()).expect("read dns");
    assert!(s1.is_empty() && s2.is_empty(), "fresh segments unreadable: {s1:?} {s2:?}");
    Ingested { stats, flows, dns }
}

// ---- How tshark 4.0 prints DNS names (shared by the DNS oracle tests) ----

/// Our presentation form → raw bytes (the inverse of our escaping; label
/// separators and escaped dots both become '.', as tshark prints them).
pub fn unescape_presentation(name: &str) -> Vec<u8> {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() + 1 && b[i + 1].is_ascii_digit() {
            let d = std::str::from_utf8(&b[i + 1..i + 4]).expect("ascii");
            out.push(d.parse().expect("\\DDD"));
            i += 4;
        } else if b[i] == b'\\' && i + 1 < b.len() {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Our presentation form → what tshark 4.0 prints for the same wire name
/// (see the module docs). Non-ASCII bytes go through an emulation of
/// Wireshark's lenient UTF-8 decoder, worked out from crafted names:
/// lead bytes announce up to 5 continuation bytes (pre-RFC 3629 UTF-8),
/// overlong forms are accepted (`C0 A8` is `(`), a sequence cut short by a
/// non-continuation byte becomes one U+FFFD and that byte is decoded afresh,
/// a code point above U+10FFFF or a surrogate becomes one U+FFFD, and a
/// decoded code point that GLib does not consider printable is `\uXXXX`.
pub fn to_tshark_name(name: &str) -> String {
    if name == "." {
        return "<Root>".into();
    }
    let raw = unescape_presentation(name);
    let mut out = String::new();
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c < 0x80 {
            match c {
                0x07 => out.push_str("\\a"),
                0x08 => out.push_str("\\b"),
                0x0c => out.push_str("\\f"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x0b => out.push_str("\\v"),
                0x00..=0x1f | 0x7f => out.push_str(&format!("\\{c:03o}")),
                _ => out.push(char::from(c)),
            }
            continue;
        }
        let (more, init) = match c {
            0xc0..=0xdf => (1, c & 0x1f),
            0xe0..=0xef => (2, c & 0x0f),
            0xf0..=0xf7 => (3, c & 0x07),
            0xf8..=0xfb => (4, c & 0x03),
            0xfc..=0xfd => (5, c & 0x01),
            _ => {
                out.push('\u{fffd}');
                continue;
            }
        };
        let mut cp = u32::from(init);
        let mut complete = true;
        for _ in 0..more {
            match raw.get(i) {
                Some(&b) if b & 0xc0 == 0x80 => {
                    cp = cp << 6 | u32::from(b & 0x3f);
                    i += 1;
                }
                _ => {
                    complete = false;
                    break;
                }
            }
        }
        match char::from_u32(cp) {
            Some(ch) if complete && glib_printable(ch) => out.push(ch),
            Some(_) if complete => out.push_str(&format!("\\u{cp:04X}")),
            _ => out.push('\u{fffd}'),
        }
    }
    out
}

/// An approximation of GLib's `g_unichar_isprint` (false for controls,
/// format characters, noncharacters and unassigned code points). Exact
/// for the code points checked with crafted names; unassigned code points
/// would need Unicode tables, so only those met in the data are listed.
pub fn glib_printable(ch: char) -> bool {
    let cp = u32::from(ch);
    let control = cp < 0x20 || (0x7f..=0x9f).contains(&cp);
    let format = matches!(
        cp,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
            | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe0001 | 0xe0020..=0xe007f
    );
    let nonchar = (0xfdd0..=0xfdef).contains(&cp) || cp & 0xfffe == 0xfffe;
    let unassigned = matches!(cp, 0x378..=0x379 | 0x590);
    !(control || format || nonchar || unassigned)
}

