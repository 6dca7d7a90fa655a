//! Domain names: wire-format decoding (with compression) and presentation form.
//!
//! Presentation rules (the same for question names, owner names and names
//! inside RDATA):
//!
//! - labels are joined with `.`; there is no trailing dot, except that the
//!   root name alone is `.`;
//! - inside a label, `.` and `\` are written `\.` and `\\` (so a label
//!   containing a dot cannot be confused with two labels);
//! - every byte outside `0x21..=0x7e` (controls, space, DEL, bytes ≥ 0x80) is
//!   written `\DDD`, three decimal digits (RFC 1035 §5.1, RFC 4343 §2.1);
//! - letter case is kept as on the wire (RFC 4343: case is preserved, only
//!   comparisons ignore it), so 0x20-randomised names show their mixed case.
//!
//! Other zone-file specials (`"`, `;`, `(`, `)`, `@`, `$`) are not escaped:
//! the strings are for matching and display, not for re-reading as a zone
//! file, and tshark does not escape them either.
//!
//! For ordinary names this is exactly what tshark prints. It differs,
//! unavoidably, where tshark's form is lossy or not ASCII: tshark prints the
//! root as `<Root>`, a dot or backslash inside a label unescaped, control
//! bytes as C escapes or *octal* `\ooo`, and bytes ≥ 0x80 as UTF-8 text
//! (invalid sequences as U+FFFD). `tests/dns_captures.rs` maps our form onto
//! tshark's to compare the two.

use super::DnsError;
use std::fmt::Write as _;

/// Longest name on the wire, counting length octets and the final root label
/// (RFC 1035 §2.3.4). The kernel decoder uses the same bound.
pub const MAX_NAME_WIRE_LEN: usize = osprey_ebpf::consts::DNS_MAX_NAME_LEN as usize;

/// Compression pointers followed while decoding one name. A name that fits
/// in 255 bytes has at most 127 labels, so it never needs more pointers than
/// that even if every label is reached through its own pointer; one more
/// allows a single pointer-to-pointer hop. Anything beyond is a loop or
/// abuse, and bounding the hops bounds the work.
pub const MAX_POINTER_JUMPS: usize = 128;

/// Decodes the name starting at `start` and appends its presentation form to
/// `out`. Returns the offset just past the name *in place* (after the first
/// compression pointer, or after the terminating zero label).
///
/// Two passes: the first follows and validates the labels and measures the
/// text, the second reserves exactly once and writes it (re-walking is
/// cheaper than remembering up to 127 label positions). On error `out` is
/// left unchanged.
pub(crate) fn read_name(msg: &[u8], start: usize, out: &mut String) -> Result<usize, DnsError> {
    let mut labels = 0usize;
    let mut text_len = 0usize;
    let mut label_bytes = 0usize;
    let mut pos = start;
    // Offset just past the name in the original position, fixed at the first jump.
    let mut end: Option<usize> = None;
    let mut jumps = 0usize;
    let end = loop {
        let Some(&len) = msg.get(pos) else {
            return Err(DnsError::NameTruncated { offset: pos });
        };
        match len & 0xc0 {
            0x00 if len == 0 => break end.unwrap_or(pos + 1),
            0x00 => {
                let len = usize::from(len);
                label_bytes += len;
                labels += 1;
                // Wire length: labels, their length octets and the final zero.
                if label_bytes + labels + 1 > MAX_NAME_WIRE_LEN {
                    return Err(DnsError::NameTooLong { offset: start });
                }
                let Some(label) = msg.get(pos + 1..pos + 1 + len) else {
                    return Err(DnsError::NameTruncated { offset: pos });
                };
                text_len += label
                    .iter()
                    .map(|&b| usize::from(ESCAPED_LEN[usize::from(b)]))
                    .sum::<usize>();
                pos += 1 + len;
            }
            0xc0 => {
                let Some(&low) = msg.get(pos + 1) else {
                    return Err(DnsError::NameTruncated { offset: pos });
                };
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target >= msg.len() {
                    return Err(DnsError::PointerOutOfRange {
                        offset: pos,
                        target,
                    });
                }
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::PointerLoop { offset: start });
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            // 0x40 (RFC 6891 extended label types, incl. the withdrawn RFC 2673
            // bit-string labels) and 0x80 (reserved): nobody sends them and
            // their length cannot be known, so the name cannot be decoded.
            _ => {
                return Err(DnsError::BadLabelType {
                    offset: pos,
                    byte: len,
                });
            }
        }
    };
    if labels == 0 {
        out.push('.');
        return Ok(end);
    }
    // Write bytes, then validate once: cheaper than a `str` conversion per
    // label or a `char` push per byte. Everything written is ASCII, and the
    // prefix already in `out` is valid UTF-8, so the conversion cannot fail.
    let mut text = std::mem::take(out).into_bytes();
    text.reserve_exact(text_len + labels - 1);
    let plain = text_len == label_bytes;
    let mut pos = start;
    let mut first = true;
    // The first pass validated every step, so `get` never fails here.
    while let Some(&len) = msg.get(pos) {
        match len & 0xc0 {
            0x00 if len == 0 => break,
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .unwrap_or_default();
                if !first {
                    text.push(b'.');
                }
                first = false;
                if plain {
                    text.extend_from_slice(label);
                } else {
                    escape_label(&mut text, label);
                }
                pos += 1 + usize::from(len);
            }
            _ => {
                pos = usize::from(len & 0x3f) << 8
                    | usize::from(msg.get(pos + 1).copied().unwrap_or(0))
            }
        }
    }
    *out = String::from_utf8(text)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(end)
}

/// Presentation length of each byte value inside a label.
const ESCAPED_LEN: [u8; 256] = {
    let mut t = [4u8; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        t[b] = 1;
        b += 1;
    }
    t[b'.' as usize] = 2;
    t[b'\\' as usize] = 2;
    t
};

/// Appends one label's bytes with the escaping described in the module docs.
fn escape_label(out: &mut Vec<u8>, label: &[u8]) {
    for &b in label {
        match ESCAPED_LEN[usize::from(b)] {
            1 => out.push(b),
            2 => out.extend_from_slice(&[b'\\', b]),
            _ => out.extend_from_slice(&[b'\\', b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10]),
        }
    }
}

/// Returns the offset just past the name at `start` without decoding it or
/// following pointers. Checks the in-place part the same way [`read_name`] does.
pub(crate) fn skip_name(msg: &[u8], start: usize) -> Result<usize, DnsError> {
    let mut pos = start;
    loop {
        let Some(&len) = msg.get(pos) else {
            return Err(DnsError::NameTruncated { offset: pos });
        };
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => {
                if pos + 1 + usize::from(len) > msg.len() {
                    return Err(DnsError::NameTruncated { offset: pos });
                }
                pos += 1 + usize::from(len);
                if pos - start + 1 > MAX_NAME_WIRE_LEN {
                    return Err(DnsError::NameTooLong { offset: start });
                }
            }
            0xc0 => {
                if pos + 2 > msg.len() {
                    return Err(DnsError::NameTruncated { offset: pos });
                }
                return Ok(pos + 2);
            }
            _ => {
                return Err(DnsError::BadLabelType {
                    offset: pos,
                    byte: len,
                });
            }
        }
    }
}

/// Appends `\DDD` (three decimal digits).
pub(crate) fn push_ddd(out: &mut String, b: u8) {
    out.push('\\');
    out.push(char::from(b'0' + b / 100));
    out.push(char::from(b'0' + b / 10 % 10));
    out.push(char::from(b'0' + b % 10));
}

/// Appends a `<character-string>` (RFC 1035 §3.3) in zone-file form: quoted,
/// with `"` and `\` backslash-escaped and bytes outside `0x20..=0x7e` as
/// `\DDD`. Space is kept literally, as it is inside quotes.
pub(crate) fn push_quoted(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => push_ddd(out, b),
        }
    }
    out.push('"');
}

/// Appends `n` in decimal, without going through `core::fmt` (a hot path:
/// every A record, MX preference and SOA counter).
pub(crate) fn push_num(out: &mut String, n: impl Into<u64>) {
    let mut n: u64 = n.into();
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Digits are ASCII, so this never falls back.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends anything `Display` (IPv6 addresses: their RFC 5952 compression
/// is best left to std).
pub(crate) fn push_display(out: &mut String, v: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{v}");
}

/// Appends an IPv4 address in dotted-quad form.
pub(crate) fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    out.push_str(std::str::from_utf8(&buf[..n]).unwrap_or_default());
}
