//! RDATA in presentation form, plus the typed values (`ip`, `target`).
//!
//! Formats follow the zone-file presentation of each type's RFC, with the
//! name rules of [`super::name`] (no trailing dot). Conventions:
//!
//! - binary fields the RFCs present in hex (DS/CDS digests, SSHFP
//!   fingerprints, TLSA/SMIMEA data, NSEC3 salts, RFC 3597 data) are
//!   **upper-case hex** without spaces, as BIND and dig print them;
//! - keys and signatures the RFCs present in base64 (DNSKEY, CDNSKEY, RRSIG,
//!   SIG, DHCID, OPENPGPKEY, SVCB `ech`) are standard **base64 with padding**,
//!   on one line;
//! - NSEC3 next hashed owner names are upper-case base32hex without padding;
//! - RRSIG times are `YYYYMMDDHHMMSS` (UTC), type lists use mnemonics
//!   (`TYPE<n>` for unknown types, RFC 3597 §5);
//! - character-strings are quoted with `"`/`\` escaped and non-printable
//!   bytes as `\DDD`;
//! - anything without a presentation format of its own (NULL, OPT, WKS, A6,
//!   any unknown type), and any RDATA that does not decode exactly for its
//!   type (wrong length, trailing bytes, bad embedded name), is written in
//!   the RFC 3597 generic form `\# <len> <HEX>` (`\# 0` when empty), with
//!   `ip` and `target` left empty.

use super::name::{push_display, push_ipv4, push_num, push_quoted, read_name};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The decoded RDATA of one RR.
pub(crate) struct Rdata {
    pub(crate) data: String,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) target: Option<String>,
}

/// Formats the RDATA at `msg[start..end]` (`end` already checked against the
/// message length). Names in RDATA may use compression pointers into the
/// whole message (RFC 3597 §4 lists where senders may compress; decoding
/// them everywhere is the robust reading), but their in-place part must stay
/// inside the RDATA.
pub(crate) fn decode(msg: &[u8], rtype: u16, start: usize, end: usize) -> Rdata {
    // Room for the usual case (a decimal or hex rendering, or an expanded
    // name) without regrowing; proportional to RDLENGTH, so bounded.
    let mut data = String::with_capacity(2 * (end - start) + 16);
    let mut rd = Rd {
        msg,
        pos: start,
        end,
    };
    match typed(&mut rd, rtype, &mut data) {
        Some(typed) if rd.pos == rd.end => Rdata {
            data,
            ip: typed.ip,
            target: typed.target,
        },
        _ => {
            data.clear();
            push_generic(&mut data, &msg[start..end]);
            Rdata {
                data,
                ip: None,
                target: None,
            }
        }
    }
}

/// Typed values found while formatting.
#[derive(Default)]
struct Typed {
    ip: Option<IpAddr>,
    target: Option<String>,
}

impl Typed {
    fn target(t: String) -> Self {
        Typed {
            ip: None,
            target: Some(t),
        }
    }
}

/// Writes the presentation form of `rtype` into `out`; `None` means "not a
/// type with a specific format, or malformed" and the caller falls back to
/// RFC 3597. The caller also checks that the whole RDATA was consumed.
fn typed(rd: &mut Rd<'_>, rtype: u16, out: &mut String) -> Option<Typed> {
    match rtype {
        // A
        1 => {
            let b: [u8; 4] = rd.bytes(4)?.try_into().ok()?;
            let ip = Ipv4Addr::from(b);
            push_ipv4(out, ip);
            Some(Typed {
                ip: Some(IpAddr::V4(ip)),
                target: None,
            })
        }
        // AAAA
        28 => {
            let b: [u8; 16] = rd.bytes(16)?.try_into().ok()?;
            let ip = Ipv6Addr::from(b);
            push_display(out, ip);
            Some(Typed {
                ip: Some(IpAddr::V6(ip)),
                target: None,
            })
        }
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME: a single name.
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => {
            rd.name(out)?;
            Some(Typed::target(out.clone()))
        }
        // MX, AFSDB, RT, KX: a 16-bit preference/subtype and a host name.
        15 | 18 | 21 | 36 => {
            push_num(out, rd.u16()?);
            out.push(' ');
            let at = out.len();
            rd.name(out)?;
            Some(Typed::target(out[at..].to_owned()))
        }
        // SRV: priority weight port target.
        33 => {
            for _ in 0..3 {
                push_num(out, rd.u16()?);
                out.push(' ');
            }
            let at = out.len();
            rd.name(out)?;
            Some(Typed::target(out[at..].to_owned()))
        }
        // SOA: mname rname serial refresh retry expire minimum.
        6 => {
            rd.name(out)?;
            out.push(' ');
            rd.name(out)?;
            for _ in 0..5 {
                out.push(' ');
                push_num(out, rd.u32()?);
            }
            Some(Typed::default())
        }
        // MINFO (rmailbx emailbx), RP (mbox txt-dname): two names.
        14 | 17 => {
            rd.name(out)?;
            out.push(' ');
            rd.name(out)?;
            Some(Typed::default())
        }
        // HINFO: exactly two character-strings (cpu, os).
        13 => {
            rd.char_string(out)?;
            out.push(' ');
            rd.char_string(out)?;
            Some(Typed::default())
        }
        // TXT, SPF: one or more character-strings.
        16 | 99 => {
            rd.char_string(out)?;
            while rd.pos < rd.end {
                out.push(' ');
                rd.char_string(out)?;
            }
            Some(Typed::default())
        }
        // NAPTR (RFC 3403): order preference flags services regexp replacement.
        35 => {
            push_num(out, rd.u16()?);
            out.push(' ');
            push_num(out, rd.u16()?);
            for _ in 0..3 {
                out.push(' ');
                rd.char_string(out)?;
            }
            out.push(' ');
            rd.name(out)?;
            Some(Typed::default())
        }
        // LOC (RFC 1876).
        29 => {
            loc(rd.bytes(rd.remaining())?, out)?;
            Some(Typed::default())
        }
        // DS, CDS, DLV: key tag, algorithm, digest type, digest (hex).
        43 | 59 | 32769 => {
            push_num(out, rd.u16()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_hex(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // SSHFP (RFC 4255): algorithm, fingerprint type, fingerprint (hex).
        44 => {
            push_num(out, rd.u8()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_hex(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // TLSA, SMIMEA: usage, selector, matching type, data (hex).
        52 | 53 => {
            for _ in 0..3 {
                push_num(out, rd.u8()?);
                out.push(' ');
            }
            push_hex(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // DNSKEY, CDNSKEY, KEY: flags, protocol, algorithm, key (base64).
        48 | 60 | 25 => {
            push_num(out, rd.u16()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_base64(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // RRSIG, SIG: type covered, algorithm, labels, original TTL,
        // expiration, inception, key tag, signer's name, signature (base64).
        46 | 24 => {
            push_type(out, rd.u16()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_num(out, rd.u8()?);
            out.push(' ');
            push_num(out, rd.u32()?);
            out.push(' ');
            push_time(out, rd.u32()?);
            out.push(' ');
            push_time(out, rd.u32()?);
            out.push(' ');
            push_num(out, rd.u16()?);
            out.push(' ');
            rd.name(out)?;
            out.push(' ');
            push_base64(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // NSEC: next domain name, type bitmap.
        47 => {
            rd.name(out)?;
            push_type_bitmap(out, rd.bytes(rd.remaining())?)?;
            Some(Typed::default())
        }
        // NSEC3 (RFC 5155): alg flags iterations salt next-hashed-owner types.
        50 => {
            nsec3_params(rd, out)?;
            out.push(' ');
            let hlen = usize::from(rd.u8()?);
            push_base32hex(out, rd.bytes(hlen).filter(|h| !h.is_empty())?);
            push_type_bitmap(out, rd.bytes(rd.remaining())?)?;
            Some(Typed::default())
        }
        // NSEC3PARAM: alg flags iterations salt.
        51 => {
            nsec3_params(rd, out)?;
            Some(Typed::default())
        }
        // DHCID, OPENPGPKEY: one base64 blob.
        49 | 61 => {
            push_base64(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // EUI48, EUI64 (RFC 7043): dash-separated hex octets.
        108 | 109 => {
            let n = if rtype == 108 { 6 } else { 8 };
            for (i, b) in rd.bytes(n)?.iter().enumerate() {
                if i > 0 {
                    out.push('-');
                }
                let _ = write!(out, "{b:02x}");
            }
            Some(Typed::default())
        }
        // URI (RFC 7553): priority weight "target". The target is a URI, not a
        // domain name, so `target` stays empty.
        256 => {
            push_num(out, rd.u16()?);
            out.push(' ');
            push_num(out, rd.u16()?);
            out.push(' ');
            push_quoted(out, rd.nonempty_rest()?);
            Some(Typed::default())
        }
        // CAA (RFC 8659): flags tag "value".
        257 => {
            push_num(out, rd.u8()?);
            out.push(' ');
            let tag_len = usize::from(rd.u8()?);
            let tag = rd.bytes(tag_len)?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            out.push_str(std::str::from_utf8(tag).ok()?);
            out.push(' ');
            push_quoted(out, rd.bytes(rd.remaining())?);
            Some(Typed::default())
        }
        // SVCB, HTTPS (RFC 9460): priority target params.
        64 | 65 => svcb(rd, out),
        // NULL, OPT and everything else: RFC 3597 generic form (the caller's
        // fallback). OPT is a pseudo-RR without a zone-file form; it belongs
        // in the additional section and is summarised in `DnsMessage::edns`.
        _ => None,
    }
}

/// NSEC3/NSEC3PARAM common prefix: algorithm, flags, iterations, salt.
fn nsec3_params(rd: &mut Rd<'_>, out: &mut String) -> Option<()> {
    push_num(out, rd.u8()?);
    out.push(' ');
    push_num(out, rd.u8()?);
    out.push(' ');
    push_num(out, rd.u16()?);
    out.push(' ');
    let slen = usize::from(rd.u8()?);
    let salt = rd.bytes(slen)?;
    if salt.is_empty() {
        out.push('-');
    } else {
        push_hex(out, salt);
    }
    Some(())
}

/// SVCB/HTTPS: `priority target key=value...` in RFC 9460 §2.1 form.
fn svcb(rd: &mut Rd<'_>, out: &mut String) -> Option<Typed> {
    push_num(out, rd.u16()?);
    out.push(' ');
    let at = out.len();
    // RFC 9460 §2.2: the target name is never compressed; be strict so a
    // pointer-looking byte sequence does not decode into nonsense.
    rd.name_uncompressed(out)?;
    let target = out[at..].to_owned();
    let mut last_key: Option<u16> = None;
    while rd.pos < rd.end {
        let key = rd.u16()?;
        // Keys must be strictly increasing (§2.2); otherwise treat as malformed.
        if last_key.is_some_and(|k| key <= k) {
            return None;
        }
        last_key = Some(key);
        let len = usize::from(rd.u16()?);
        let val = rd.bytes(len)?;
        out.push(' ');
        match key {
            0 => {
                // mandatory: list of keys.
                if val.is_empty() || !val.len().is_multiple_of(2) {
                    return None;
                }
                out.push_str("mandatory=");
                for (i, k) in val.chunks_exact(2).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_svc_key(out, u16::from_be_bytes([k[0], k[1]]));
                }
            }
            1 => {
                // alpn: list of character-strings, shown comma-separated inside
                // one quoted value. A literal comma or backslash inside an id
                // is escaped as `\\,` / `\\\\` (value-list escaping, Appendix A.1).
                out.push_str("alpn=\"");
                let mut v = val;
                let mut first = true;
                while let Some((&n, rest)) = v.split_first() {
                    let id = rest.get(..usize::from(n)).filter(|id| !id.is_empty())?;
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    for &b in id {
                        match b {
                            b',' | b'\\' => {
                                out.push_str("\\\\");
                                out.push(char::from(b));
                            }
                            b'"' => out.push_str("\\\""),
                            0x20..=0x7e => out.push(char::from(b)),
                            _ => super::name::push_ddd(out, b),
                        }
                    }
                    v = &rest[usize::from(n)..];
                }
                if first {
                    return None;
                }
                out.push('"');
            }
            2 if val.is_empty() => out.push_str("no-default-alpn"),
            3 if val.len() == 2 => {
                out.push_str("port=");
                push_num(out, u16::from_be_bytes([val[0], val[1]]));
            }
            4 if !val.is_empty() && val.len().is_multiple_of(4) => {
                out.push_str("ipv4hint=");
                for (i, a) in val.chunks_exact(4).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_ipv4(out, Ipv4Addr::new(a[0], a[1], a[2], a[3]));
                }
            }
            5 if !val.is_empty() => {
                out.push_str("ech=");
                push_base64(out, val);
            }
            6 if !val.is_empty() && val.len().is_multiple_of(16) => {
                out.push_str("ipv6hint=");
                for (i, a) in val.chunks_exact(16).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let b: [u8; 16] = a.try_into().ok()?;
                    push_display(out, Ipv6Addr::from(b));
                }
            }
            2..=6 => return None,
            _ => {
                push_svc_key(out, key);
                if !val.is_empty() {
                    out.push('=');
                    push_quoted(out, val);
                }
            }
        }
    }
    Some(Typed::target(target))
}

fn push_svc_key(out: &mut String, key: u16) {
    match key {
        0 => out.push_str("mandatory"),
        1 => out.push_str("alpn"),
        2 => out.push_str("no-default-alpn"),
        3 => out.push_str("port"),
        4 => out.push_str("ipv4hint"),
        5 => out.push_str("ech"),
        6 => out.push_str("ipv6hint"),
        _ => {
            out.push_str("key");
            push_num(out, key);
        }
    }
}

/// LOC version 0 (RFC 1876 §3), e.g. `42 21 54.000 N 71 6 18.000 W -24.00m 30m 10000m 10m`.
fn loc(b: &[u8], out: &mut String) -> Option<()> {
    let b: &[u8; 16] = b.try_into().ok()?;
    if b[0] != 0 {
        return None;
    }
    let size = loc_size(b[1])?;
    let hp = loc_size(b[2])?;
    let vp = loc_size(b[3])?;
    let lat = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let lon = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    let alt = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
    // Angles are thousandths of an arc second offset by 2^31; RFC 1876
    // limits them to ±90° and ±180°.
    const MAS_PER_DEG: i64 = 3_600_000;
    let lat = i64::from(lat) - (1i64 << 31);
    let lon = i64::from(lon) - (1i64 << 31);
    if lat.abs() > 90 * MAS_PER_DEG || lon.abs() > 180 * MAS_PER_DEG {
        return None;
    }
    push_angle(out, lat, if lat < 0 { 'S' } else { 'N' });
    out.push(' ');
    push_angle(out, lon, if lon < 0 { 'W' } else { 'E' });
    out.push(' ');
    // Altitude: centimetres above a base 100 000 m below the WGS 84 spheroid.
    let alt = i64::from(alt) - 10_000_000;
    let sign = if alt < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{}.{:02}m", alt.abs() / 100, alt.abs() % 100);
    for cm in [size, hp, vp] {
        out.push(' ');
        push_metres(out, cm);
    }
    Some(())
}

/// A LOC size byte: mantissa (high nibble) × 10^exponent (low nibble) cm; both ≤ 9.
fn loc_size(b: u8) -> Option<u64> {
    let (m, e) = (u64::from(b >> 4), u32::from(b & 0x0f));
    (m <= 9 && e <= 9).then(|| m * 10u64.pow(e))
}

fn push_angle(out: &mut String, mas: i64, hemi: char) {
    let mas = mas.unsigned_abs();
    let deg = mas / 3_600_000;
    let min = mas / 60_000 % 60;
    let sec = mas / 1000 % 60;
    let frac = mas % 1000;
    let _ = write!(out, "{deg} {min} {sec}.{frac:03} {hemi}");
}

fn push_metres(out: &mut String, cm: u64) {
    if cm.is_multiple_of(100) {
        let _ = write!(out, "{}m", cm / 100);
    } else {
        let _ = write!(out, "{}.{:02}m", cm / 100, cm % 100);
    }
}

/// NSEC/NSEC3 type bitmap (RFC 4034 §4.1.2): each type as ` MNEMONIC`.
/// Windows must be in increasing order with 1..=32 octet bitmaps.
fn push_type_bitmap(out: &mut String, mut b: &[u8]) -> Option<()> {
    let mut last_window: Option<u8> = None;
    while let [window, len, rest @ ..] = b {
        let len = usize::from(*len);
        if !(1..=32).contains(&len) || last_window.is_some_and(|w| *window <= w) {
            return None;
        }
        last_window = Some(*window);
        let bits = rest.get(..len)?;
        for (i, &byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let t = u16::from(*window) << 8 | (i * 8 + bit) as u16;
                    out.push(' ');
                    push_type(out, t);
                }
            }
        }
        b = &rest[len..];
    }
    // A single dangling octet is malformed.
    b.is_empty().then_some(())
}

/// Appends the mnemonic of an RR type, or `TYPE<n>` (RFC 3597 §5).
pub(crate) fn push_type(out: &mut String, t: u16) {
    match type_name(t) {
        Some(n) => out.push_str(n),
        None => {
            out.push_str("TYPE");
            push_num(out, t);
        }
    }
}

/// The IANA mnemonic of an RR type (or QTYPE), if it has one.
pub fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        32768 => "TA",
        32769 => "DLV",
        _ => return None,
    })
}

/// RFC 3597 generic form: `\# <len> <HEX>`, or `\# 0`.
pub(crate) fn push_generic(out: &mut String, b: &[u8]) {
    out.push_str("\\# ");
    push_num(out, b.len() as u64);
    if !b.is_empty() {
        out.push(' ');
        push_hex(out, b);
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

pub(crate) fn push_hex(out: &mut String, b: &[u8]) {
    out.reserve(b.len() * 2);
    for &x in b {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn push_base64(out: &mut String, b: &[u8]) {
    out.reserve(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

const B32HEX: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";

fn push_base32hex(out: &mut String, b: &[u8]) {
    for chunk in b.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = buf.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
        // 8 bits in → 8/5 characters out, rounded up; no padding (RFC 5155 §3.3).
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(char::from(B32HEX[(n >> (35 - 5 * i) & 0x1f) as usize]));
        }
    }
}

/// RRSIG time (RFC 4034 §3.2): `YYYYMMDDHHMMSS` in UTC from seconds since the epoch.
fn push_time(out: &mut String, secs: u32) {
    let secs = i64::from(secs);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (the well-known
/// era-based algorithm: 400-year eras of 146 097 days, years starting in March).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A cursor over one RR's RDATA.
struct Rd<'a> {
    msg: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Rd<'a> {
    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let b = &self.msg[self.pos..self.pos + n];
        self.pos += n;
        Some(b)
    }

    /// The rest of the RDATA, which must not be empty (digests, keys, signatures).
    fn nonempty_rest(&mut self) -> Option<&'a [u8]> {
        self.bytes(self.remaining()).filter(|b| !b.is_empty())
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A (possibly compressed) name whose in-place part lies inside the RDATA.
    fn name(&mut self, out: &mut String) -> Option<()> {
        let end = read_name(self.msg, self.pos, out).ok()?;
        if end > self.end {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// An uncompressed name entirely inside the RDATA.
    fn name_uncompressed(&mut self, out: &mut String) -> Option<()> {
        let rdata = &self.msg[..self.end];
        let mut p = self.pos;
        // Reject pointers before decoding: read_name would follow them.
        loop {
            let len = *rdata.get(p)?;
            if len == 0 {
                break;
            }
            if len & 0xc0 != 0 {
                return None;
            }
            p += 1 + usize::from(len);
        }
        self.pos = read_name(rdata, self.pos, out).ok()?;
        Some(())
    }

    /// A `<character-string>`: length octet and that many bytes, quoted.
    fn char_string(&mut self, out: &mut String) -> Option<()> {
        let n = usize::from(self.u8()?);
        push_quoted(out, self.bytes(n)?);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        let mut s = String::new();
        push_base64(&mut s, b);
        s
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foob"), "Zm9vYg==");
        assert_eq!(b64(b"fooba"), "Zm9vYmE=");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn base32hex_matches_rfc4648_vectors_without_padding() {
        let f = |b: &[u8]| {
            let mut s = String::new();
            push_base32hex(&mut s, b);
            s
        };
        assert_eq!(f(b"f"), "CO");
        assert_eq!(f(b"fo"), "CPNG");
        assert_eq!(f(b"foo"), "CPNMU");
        assert_eq!(f(b"foob"), "CPNMUOG");
        assert_eq!(f(b"fooba"), "CPNMUOJ1");
        assert_eq!(f(b"foobar"), "CPNMUOJ1E8");
    }

    #[test]
    fn rrsig_times_are_utc_calendar_dates() {
        let f = |t: u32| {
            let mut s = String::new();
            push_time(&mut s, t);
            s
        };
        assert_eq!(f(0), "19700101000000");
        // 2000-02-29 12:34:56 UTC (leap day) = 951827696.
        assert_eq!(f(951_827_696), "20000229123456");
        assert_eq!(f(u32::MAX), "21060207062815");
    }
}
