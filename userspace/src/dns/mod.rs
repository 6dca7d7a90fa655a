//! DNS wire-format decoding and DNS-over-TCP reassembly.
//!
//! Every input that sees DNS (offline pcap ingest, live capture) turns a DNS
//! message into a [`DnsMessage`] here, so that all of them agree on names,
//! answers and error handling. The pieces:
//!
//! - [`parse_message`]: header, first question and the typed answer section
//!   (RFC 1035 and successors); [`peek_header`] for callers that only need
//!   the 12-byte header.
//! - [`TcpDnsStream`] / [`TcpDnsReassembler`]: the RFC 1035 §4.2.2 two-byte
//!   length framing of DNS over TCP, per direction of a connection.
//! - [`QueryMatcher`]: pairs responses with their queries to fill
//!   [`DnsRecord::latency_ns`].
//!
//! Presentation rules for names are in the docs of the `name` submodule
//! (labels joined by `.`, root is `.`, no trailing dot, `\.` `\\` and `\DDD`
//! escapes), the RDATA formats in the `rdata` submodule (zone-file forms, upper-case
//! hex, base64, RFC 3597 `\# len HEX` for unknown or malformed RDATA).
//!
//! Hostile input is expected (the captures include fuzz regressions and
//! DNS tunnels): nothing here panics on any input, every loop is bounded by
//! the message length, and allocations are bounded by [`ParseLimits`]
//! rather than by the counts in the header.

mod matcher;
mod name;
mod rdata;
mod tcp;

#[cfg(test)]
mod tests;

pub use matcher::{MatchConfig, MatchKey, MatchStats, QueryMatcher};
pub use name::{MAX_NAME_WIRE_LEN, MAX_POINTER_JUMPS};
pub use rdata::type_name;
pub use tcp::{
    TcpDnsConfig, TcpDnsMessages, TcpDnsReassembler, TcpDnsSkip, TcpDnsStats, TcpDnsStream,
};

use osprey_segment::records::{DnsAnswer, DnsRecord, DnsTransport, TimestampNs};
use std::net::IpAddr;

/// Size of the fixed DNS header.
pub const HEADER_LEN: usize = 12;

/// RR type of the EDNS(0) OPT pseudo-record (RFC 6891).
pub const TYPE_OPT: u16 = 41;

/// Why a message (or the rest of its answer section) could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than the 12-byte header.
    #[error("message is {len} bytes, shorter than the 12-byte DNS header")]
    ShortHeader {
        /// Message length.
        len: usize,
    },
    /// A name's labels run past the end of the message.
    #[error("name runs past the end of the message at offset {offset}")]
    NameTruncated {
        /// Offset of the label (or pointer) that did not fit.
        offset: usize,
    },
    /// A compression pointer points at or past the end of the message.
    #[error(
        "compression pointer at offset {offset} points to {target}, past the end of the message"
    )]
    PointerOutOfRange {
        /// Offset of the pointer.
        offset: usize,
        /// Where it points.
        target: usize,
    },
    /// More than [`MAX_POINTER_JUMPS`] pointers in one name: a loop.
    #[error("compression pointer loop in the name at offset {offset}")]
    PointerLoop {
        /// Offset where the name starts.
        offset: usize,
    },
    /// The name exceeds [`MAX_NAME_WIRE_LEN`] wire bytes.
    #[error("name at offset {offset} is longer than 255 bytes")]
    NameTooLong {
        /// Offset where the name starts.
        offset: usize,
    },
    /// A label starts with the reserved 0x40 or 0x80 type bits.
    #[error("unsupported label type {byte:#04x} at offset {offset}")]
    BadLabelType {
        /// Offset of the label.
        offset: usize,
        /// The length/type octet.
        byte: u8,
    },
    /// The question's QTYPE/QCLASS do not fit.
    #[error("question truncated at offset {offset}")]
    QuestionTruncated {
        /// Offset where the fixed fields should start.
        offset: usize,
    },
    /// A resource record's fixed fields (type, class, TTL, RDLENGTH) do not fit.
    #[error("resource record truncated at offset {offset}")]
    RecordTruncated {
        /// Offset where the fixed fields should start.
        offset: usize,
    },
    /// RDLENGTH reaches past the end of the message.
    #[error("RDATA of {rdlength} bytes at offset {offset} runs past the end of the message")]
    RdataOverrun {
        /// Offset of the RDATA.
        offset: usize,
        /// The RDLENGTH field.
        rdlength: u16,
    },
    /// Decoding stopped at a [`ParseLimits`] bound, not at bad data.
    #[error("answer decoding stopped at a configured limit")]
    LimitReached,
}

impl DnsError {
    /// All error kinds, for counter tables (field values are placeholders).
    pub const KINDS: [&'static str; 10] = [
        "short_header",
        "name_truncated",
        "pointer_out_of_range",
        "pointer_loop",
        "name_too_long",
        "bad_label_type",
        "question_truncated",
        "record_truncated",
        "rdata_overrun",
        "limit_reached",
    ];

    /// A short, stable name for counters and logs (one of [`Self::KINDS`]).
    pub fn as_str(&self) -> &'static str {
        Self::KINDS[self.index()]
    }

    /// Position of this kind in [`Self::KINDS`].
    pub fn index(&self) -> usize {
        match self {
            DnsError::ShortHeader { .. } => 0,
            DnsError::NameTruncated { .. } => 1,
            DnsError::PointerOutOfRange { .. } => 2,
            DnsError::PointerLoop { .. } => 3,
            DnsError::NameTooLong { .. } => 4,
            DnsError::BadLabelType { .. } => 5,
            DnsError::QuestionTruncated { .. } => 6,
            DnsError::RecordTruncated { .. } => 7,
            DnsError::RdataOverrun { .. } => 8,
            DnsError::LimitReached => 9,
        }
    }
}

/// The fixed 12-byte header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Message id.
    pub id: u16,
    /// The flags word as on the wire (QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE).
    pub flags: u16,
    /// QDCOUNT.
    pub qdcount: u16,
    /// ANCOUNT.
    pub ancount: u16,
    /// NSCOUNT.
    pub nscount: u16,
    /// ARCOUNT.
    pub arcount: u16,
}

impl Header {
    /// Reads the header; `None` if `msg` is shorter than 12 bytes.
    #[inline]
    pub fn parse(msg: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = msg.get(..HEADER_LEN)?.try_into().ok()?;
        let w = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Header {
            id: w(0),
            flags: w(2),
            qdcount: w(4),
            ancount: w(6),
            nscount: w(8),
            arcount: w(10),
        })
    }

    /// QR bit: the message is a response.
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// OPCODE (4 bits).
    pub fn opcode(&self) -> u8 {
        (self.flags >> 11 & 0x0f) as u8
    }

    /// AA bit.
    pub fn authoritative(&self) -> bool {
        self.flags & 0x0400 != 0
    }

    /// TC bit: the (UDP) response was truncated by the server.
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// RD bit.
    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// RA bit.
    pub fn recursion_available(&self) -> bool {
        self.flags & 0x0080 != 0
    }

    /// RCODE from the header (4 bits; EDNS extends it, see [`Edns::full_rcode`]).
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x0f) as u8
    }
}

/// Reads just the header; the cheap path for callers that only need ids,
/// flags or counts.
#[inline]
pub fn peek_header(msg: &[u8]) -> Option<Header> {
    Header::parse(msg)
}

/// EDNS(0) information from the OPT record of the additional section (RFC 6891 §6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edns {
    /// Requestor's UDP payload size (the OPT CLASS field).
    pub udp_payload_size: u16,
    /// Upper 8 bits of the 12-bit extended RCODE.
    pub extended_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// The 16 flag bits (DO is the top bit).
    pub flags: u16,
    /// Total length of the options (OPT RDLENGTH).
    pub options_len: u16,
}

impl Edns {
    /// DNSSEC OK bit.
    pub fn dnssec_ok(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// The 12-bit RCODE: `extended_rcode << 4 | header rcode`.
    pub fn full_rcode(&self, header_rcode: u8) -> u16 {
        u16::from(self.extended_rcode) << 4 | u16::from(header_rcode & 0x0f)
    }
}

/// Bounds on what one message may make [`parse_message_with`] allocate.
///
/// Compression lets a 12-byte RR expand to three strings of up to ~1000
/// characters each (a 253-byte name of `\DDD` escapes), so the text kept is
/// bounded in proportion to the message, and the answer count separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Answers kept at most; the rest are counted as not decoded.
    pub max_answers: usize,
    /// Text (owner names, targets, data) kept at most, as a multiple of the
    /// message length, plus [`ParseLimits::text_slack`].
    pub text_per_wire_byte: usize,
    /// Fixed allowance added to the proportional text budget.
    pub text_slack: usize,
}

impl ParseLimits {
    /// The defaults used by [`parse_message`]: 1024 answers; text up to
    /// 16 × the message length + 4 KiB (an ordinary response expands ~2–4×).
    pub const DEFAULT: ParseLimits = ParseLimits {
        max_answers: 1024,
        text_per_wire_byte: 16,
        text_slack: 4096,
    };
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One decoded DNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    /// Message id.
    pub id: u16,
    /// The flags word as on the wire.
    pub flags: u16,
    /// QR bit.
    pub is_response: bool,
    /// OPCODE (4 bits).
    pub opcode: u8,
    /// RCODE from the header (4 bits).
    pub rcode: u8,
    /// QDCOUNT from the header.
    pub qdcount: u16,
    /// ANCOUNT from the header.
    pub ancount: u16,
    /// NSCOUNT from the header.
    pub nscount: u16,
    /// ARCOUNT from the header.
    pub arcount: u16,
    /// First question name in presentation form; empty if QDCOUNT is 0.
    pub qname: String,
    /// First question type (0 if none).
    pub qtype: u16,
    /// First question class as on the wire (0 if none; mDNS's QU bit kept).
    pub qclass: u16,
    /// The answer section, in order, as far as it could be decoded.
    pub answers: Vec<DnsAnswer>,
    /// Fewer answers were decoded than ANCOUNT announced.
    pub answers_truncated: bool,
    /// Why answer decoding stopped early (set iff `answers_truncated`).
    pub answers_error: Option<DnsError>,
    /// The OPT record of the additional section, if one was found (only
    /// looked for when the answer section decoded completely).
    pub edns: Option<Edns>,
    /// Message length in bytes.
    pub size: u32,
}

impl DnsMessage {
    /// The header fields as a [`Header`].
    pub fn header(&self) -> Header {
        Header {
            id: self.id,
            flags: self.flags,
            qdcount: self.qdcount,
            ancount: self.ancount,
            nscount: self.nscount,
            arcount: self.arcount,
        }
    }

    /// Builds the segment record, moving the strings.
    pub fn into_record(self, ctx: DnsRecordContext) -> DnsRecord {
        DnsRecord {
            ts: ctx.ts,
            client_ip: ctx.client_ip,
            client_port: ctx.client_port,
            server_ip: ctx.server_ip,
            server_port: ctx.server_port,
            transport: ctx.transport,
            id: self.id,
            is_response: self.is_response,
            opcode: self.opcode,
            rcode: self.rcode,
            flags: self.flags,
            qname: self.qname,
            qtype: self.qtype,
            qclass: self.qclass,
            an_count: self.ancount,
            ns_count: self.nscount,
            ar_count: self.arcount,
            answers: self.answers,
            size: self.size,
            frame_len: ctx.frame_len,
            latency_ns: ctx.latency_ns,
        }
    }
}

/// What a [`DnsRecord`] needs besides the message itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsRecordContext {
    /// Capture time of the packet that completed the message.
    pub ts: TimestampNs,
    /// Client address.
    pub client_ip: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port.
    pub server_port: u16,
    /// UDP or TCP.
    pub transport: DnsTransport,
    /// Link-layer frame length of the packet that carried the message.
    pub frame_len: u32,
    /// Response latency, if the query was matched.
    pub latency_ns: Option<i64>,
}

/// Decodes a DNS message with [`ParseLimits::DEFAULT`].
///
/// Fails only if the header or the first question cannot be decoded (callers
/// that still want the header use [`peek_header`]). Problems later in the
/// message end the answer section early (`answers_truncated`) and malformed
/// RDATA of a known type is kept in RFC 3597 form: a partially readable
/// response is still worth a record.
pub fn parse_message(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    parse_message_with(msg, &ParseLimits::DEFAULT)
}

/// [`parse_message`] with explicit allocation bounds.
pub fn parse_message_with(msg: &[u8], limits: &ParseLimits) -> Result<DnsMessage, DnsError> {
    let h = Header::parse(msg).ok_or(DnsError::ShortHeader { len: msg.len() })?;
    let mut pos = HEADER_LEN;

    let (qname, qtype, qclass) = if h.qdcount > 0 {
        let mut qname = String::new();
        pos = name::read_name(msg, pos, &mut qname)?;
        let (qtype, qclass) =
            read_u16_pair(msg, pos).ok_or(DnsError::QuestionTruncated { offset: pos })?;
        pos += 4;
        (qname, qtype, qclass)
    } else {
        (String::new(), 0, 0)
    };

    // Sized by what the message can hold (an RR takes at least 11 bytes), not
    // by the header's ANCOUNT, which a hostile sender sets freely.
    let room = msg.len().saturating_sub(pos) / 11;
    let mut answers = Vec::with_capacity(usize::from(h.ancount).min(room).min(limits.max_answers));
    let mut error = None;
    let mut edns = None;
    // A section walk can fail at any point; the remaining sections are then
    // unreachable, which only matters for what they would have contributed.
    let walk = (|| -> Result<(), DnsError> {
        for _ in 1..h.qdcount {
            pos = name::skip_name(msg, pos)?;
            read_u16_pair(msg, pos).ok_or(DnsError::QuestionTruncated { offset: pos })?;
            pos += 4;
        }
        let budget = msg
            .len()
            .saturating_mul(limits.text_per_wire_byte)
            .saturating_add(limits.text_slack);
        let mut text = 0usize;
        // Owner names are nearly always a pointer to the question name or to
        // an earlier owner; the same offset decodes to the same string, so the
        // last pointer target is remembered with where its text already is.
        let mut last_owner = (h.qdcount > 0).then_some(OwnerCache {
            target: HEADER_LEN,
            answer: None,
        });
        for _ in 0..h.ancount {
            if answers.len() >= limits.max_answers || text > budget {
                return Err(DnsError::LimitReached);
            }
            let (rr, next) = read_answer(msg, pos, &mut last_owner, &qname, &answers)?;
            text += rr.name.len() + rr.data.len() + rr.target.as_ref().map_or(0, String::len);
            answers.push(rr);
            pos = next;
        }
        for _ in 0..h.nscount {
            pos = skip_rr(msg, pos)?.1;
        }
        for _ in 0..h.arcount {
            let (fixed, next) = skip_rr(msg, pos)?;
            // OPT's owner must be the root; a non-root "OPT" is not EDNS.
            if fixed.rtype == TYPE_OPT && msg.get(pos) == Some(&0) && edns.is_none() {
                edns = Some(Edns {
                    udp_payload_size: fixed.rclass,
                    extended_rcode: (fixed.ttl >> 24) as u8,
                    version: (fixed.ttl >> 16) as u8,
                    flags: fixed.ttl as u16,
                    options_len: fixed.rdlength,
                });
            }
            pos = next;
        }
        Ok(())
    })();
    if let Err(e) = walk
        && answers.len() < usize::from(h.ancount)
    {
        error = Some(e);
    }

    Ok(DnsMessage {
        id: h.id,
        flags: h.flags,
        is_response: h.is_response(),
        opcode: h.opcode(),
        rcode: h.rcode(),
        qdcount: h.qdcount,
        ancount: h.ancount,
        nscount: h.nscount,
        arcount: h.arcount,
        qname,
        qtype,
        qclass,
        answers_truncated: error.is_some(),
        answers_error: error,
        answers,
        edns,
        // A DNS message over UDP or TCP is at most 65535 bytes; saturate anyway.
        size: u32::try_from(msg.len()).unwrap_or(u32::MAX),
    })
}

fn read_u16_pair(msg: &[u8], pos: usize) -> Option<(u16, u16)> {
    let b = msg.get(pos..pos + 4)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

/// TYPE, CLASS, TTL and RDLENGTH of one RR.
struct RrFixed {
    rtype: u16,
    rclass: u16,
    ttl: u32,
    rdlength: u16,
}

/// Reads the fixed fields at `pos` and checks the RDATA fits; returns them
/// and the RDATA range.
fn read_fixed(msg: &[u8], pos: usize) -> Result<(RrFixed, usize, usize), DnsError> {
    let b = msg
        .get(pos..pos + 10)
        .ok_or(DnsError::RecordTruncated { offset: pos })?;
    let fixed = RrFixed {
        rtype: u16::from_be_bytes([b[0], b[1]]),
        rclass: u16::from_be_bytes([b[2], b[3]]),
        ttl: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        rdlength: u16::from_be_bytes([b[8], b[9]]),
    };
    let start = pos + 10;
    let end = start + usize::from(fixed.rdlength);
    if end > msg.len() {
        return Err(DnsError::RdataOverrun {
            offset: start,
            rdlength: fixed.rdlength,
        });
    }
    Ok((fixed, start, end))
}

/// Skips one RR (authority/additional sections), returning its fixed fields
/// and the offset of the next RR.
fn skip_rr(msg: &[u8], pos: usize) -> Result<(RrFixed, usize), DnsError> {
    let pos = name::skip_name(msg, pos)?;
    let (fixed, _, end) = read_fixed(msg, pos)?;
    Ok((fixed, end))
}

/// The pointer target of the last owner name decoded, and where its text is:
/// the question name (`None`) or the owner of `answers[i]`.
struct OwnerCache {
    target: usize,
    answer: Option<usize>,
}

/// Decodes one answer RR at `pos`; returns it and the offset of the next RR.
fn read_answer(
    msg: &[u8],
    pos: usize,
    cache: &mut Option<OwnerCache>,
    qname: &str,
    answers: &[DnsAnswer],
) -> Result<(DnsAnswer, usize), DnsError> {
    let pointer = match msg.get(pos..pos + 2) {
        Some(&[hi, lo]) if hi & 0xc0 == 0xc0 => Some(usize::from(hi & 0x3f) << 8 | usize::from(lo)),
        _ => None,
    };
    let cached = match (pointer, &*cache) {
        (Some(t), Some(c)) if c.target == t => match c.answer {
            None => Some(qname.to_owned()),
            Some(i) => answers.get(i).map(|a| a.name.clone()),
        },
        _ => None,
    };
    let (owner, pos) = match cached {
        Some(owner) => (owner, pos + 2),
        None => {
            let mut owner = String::new();
            let next = name::read_name(msg, pos, &mut owner)?;
            if let Some(target) = pointer {
                *cache = Some(OwnerCache {
                    target,
                    answer: Some(answers.len()),
                });
            }
            (owner, next)
        }
    };
    let (fixed, start, end) = read_fixed(msg, pos)?;
    let rd = rdata::decode(msg, fixed.rtype, start, end);
    let answer = DnsAnswer {
        name: owner,
        rtype: fixed.rtype,
        rclass: fixed.rclass,
        // Kept as on the wire; RFC 2181 §8's "treat MSB set as 0" is a
        // resolver policy, and a huge TTL is itself worth seeing.
        ttl: fixed.ttl,
        ip: rd.ip,
        target: rd.target,
        data: rd.data,
    };
    Ok((answer, end))
}
