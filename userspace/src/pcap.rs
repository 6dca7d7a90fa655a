//! Reading pcap and pcapng captures from a byte slice. (Writers for tests and
//! the demo generator live in [`crate::craft`].)
//!
//! The caller maps the file into memory and hands [`CaptureReader::new`] the
//! bytes; every [`RawPacket`] it yields borrows its data straight from that
//! slice. Reading a packet does not allocate, copy, or box anything: it is a few
//! bounds checks and integer loads (about 30 M packets/s per core over the
//! shared captures in memory, `tests/packet_throughput.rs`). The only
//! allocation is the pcapng interface table,
//! which grows with the number of Interface Description Blocks actually present
//! in the file (each one at least 20 bytes of input), never with a length field.
//!
//! Supported input:
//!
//! - **Classic pcap**, both byte orders, microsecond (`0xa1b2c3d4`) and
//!   nanosecond (`0xa1b23c4d`) timestamps, plus the old "modified" (Kuznetzov)
//!   variant `0xa1b2cd34` whose record headers are 24 bytes. The link type comes
//!   from the global header (its upper FCS bits are masked off).
//! - **pcapng**: Section Header Blocks in either byte order, several sections
//!   per file (each one resets the interface table); Interface Description
//!   Blocks with `if_tsresol` (decimal and power-of-two) and `if_tsoffset`;
//!   Enhanced Packet Blocks, Simple Packet Blocks (interface 0, no timestamp of
//!   their own: they get the previous packet's timestamp so the packet clock
//!   does not jump back to 1970) and obsolete Packet Blocks. Every other block
//!   type is skipped by its length.
//!
//! Errors: once the reader meets something it cannot step over safely (a
//! record that runs past the end of the data, a block length that is not a
//! multiple of 4 or disagrees with its trailing copy, a packet that names an
//! undeclared interface, a classic pcap captured length above both the snaplen
//! and 256 KiB, which only a garbage record header has) it returns one [`CaptureError`] carrying the byte
//! offset of the bad record and then `None` forever. A capture that was killed
//! mid-write therefore yields all its complete packets followed by
//! [`CaptureError::Truncated`]. The reader never panics and always makes
//! progress, whatever the input.

use std::fmt;

use thiserror::Error;

/// A link-layer header type, as numbered by the tcpdump.org `LINKTYPE_*` registry.
///
/// Numbering quirks are folded in [`LinkType::from_u32`]: files written by old
/// libpcap versions store the platform's `DLT_RAW` (12 on most systems, 14 on
/// OpenBSD) instead of `LINKTYPE_RAW` (101); all three mean raw IP, which is
/// also how Wireshark reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 0: BSD loopback, a 4-byte address family in the writer's byte order.
    Null,
    /// 1: Ethernet II / IEEE 802.3.
    Ethernet,
    /// 101 (also 12 and 14): raw IP, version taken from the first nibble.
    Raw,
    /// 108: OpenBSD loopback, a 4-byte address family in network byte order.
    Loop,
    /// 113: Linux "cooked" capture v1 (16-byte header).
    LinuxSll,
    /// 228: raw IPv4.
    Ipv4,
    /// 229: raw IPv6.
    Ipv6,
    /// 276: Linux "cooked" capture v2 (20-byte header).
    LinuxSll2,
    /// Anything else, by its number.
    Other(u32),
}

impl LinkType {
    /// Maps a link-type number from a file header.
    pub const fn from_u32(v: u32) -> Self {
        match v {
            0 => Self::Null,
            1 => Self::Ethernet,
            // 12 is DLT_RAW on most platforms and 14 on OpenBSD; old libpcap wrote
            // the DLT value into files.
            12 | 14 | 101 => Self::Raw,
            108 => Self::Loop,
            113 => Self::LinuxSll,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            276 => Self::LinuxSll2,
            other => Self::Other(other),
        }
    }

    /// The canonical `LINKTYPE_*` number (101 for raw IP).
    pub const fn to_u32(self) -> u32 {
        match self {
            Self::Null => 0,
            Self::Ethernet => 1,
            Self::Raw => 101,
            Self::Loop => 108,
            Self::LinuxSll => 113,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::LinuxSll2 => 276,
            Self::Other(v) => v,
        }
    }

    /// A short lowercase name (the `LINKTYPE_` suffix), for logs and summaries.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Ethernet => "ethernet",
            Self::Raw => "raw",
            Self::Loop => "loop",
            Self::LinuxSll => "linux_sll",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::LinuxSll2 => "linux_sll2",
            Self::Other(_) => "other",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(v) => write!(f, "linktype {v}"),
            _ => f.write_str(self.name()),
        }
    }
}

/// Why a capture could not be opened or read further.
///
/// Every variant that concerns a record carries the byte offset of that record
/// (its header) from the start of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CaptureError {
    /// The data starts with neither a pcap magic number nor a pcapng Section Header Block.
    #[error("not a pcap or pcapng file (starts with {magic:#010x})")]
    NotACapture {
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// The data is shorter than the file header (or the first Section Header Block).
    #[error("capture file header truncated: {len} bytes, need {need}")]
    TruncatedHeader {
        /// Bytes available.
        len: usize,
        /// Bytes the header needs.
        need: usize,
    },
    /// A pcap or pcapng version this reader does not know.
    #[error("unsupported {format} version {major}.{minor} at byte offset {offset}")]
    UnsupportedVersion {
        /// `"pcap"` or `"pcapng"`.
        format: &'static str,
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
        /// Offset of the header that carries it.
        offset: u64,
    },
    /// A record or block runs past the end of the data: the capture was cut short.
    #[error("capture truncated: incomplete record at byte offset {offset}")]
    Truncated {
        /// Offset of the incomplete record.
        offset: u64,
    },
    /// A record or block whose framing makes no sense; reading cannot go on.
    #[error("malformed capture record at byte offset {offset}: {what}")]
    Malformed {
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        what: &'static str,
    },
}

impl CaptureError {
    /// The byte offset the error refers to, when it refers to one.
    pub const fn offset(&self) -> Option<u64> {
        match *self {
            Self::NotACapture { .. } | Self::TruncatedHeader { .. } => None,
            Self::UnsupportedVersion { offset, .. }
            | Self::Truncated { offset }
            | Self::Malformed { offset, .. } => Some(offset),
        }
    }
}

/// One captured packet, borrowed from the capture data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPacket<'a> {
    /// Capture timestamp, nanoseconds since the Unix epoch (pcapng `if_tsoffset` applied).
    pub ts_ns: i64,
    /// Link-layer type of `data`.
    pub link_type: LinkType,
    /// Length of the packet on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// The container format of a capture, as detected from its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps carry nanoseconds rather than microseconds.
        nanos: bool,
        /// The file was written big-endian.
        big_endian: bool,
    },
    /// pcapng (byte order may change from section to section).
    PcapNg,
}

/// Classic pcap magic, microsecond timestamps.
pub const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Classic pcap magic, nanosecond timestamps.
pub const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// The "modified" pcap format (Alexey Kuznetzov's patches): 24-byte record headers.
pub const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
/// pcapng Section Header Block type (a palindrome, so byte-order independent).
pub const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic inside the Section Header Block.
pub const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Largest captured length accepted for a classic pcap record whose file
/// snaplen is smaller: Wireshark's limit for ordinary link types. A larger
/// value in an otherwise readable file means the record header is garbage.
const PCAP_MAX_CAPLEN: u32 = 262_144;

const PCAP_FILE_HEADER_LEN: usize = 24;
const NG_BLOCK_MIN: usize = 12;
const NG_SHB_MIN: usize = 28;

const NG_IDB: u32 = 0x0000_0001;
const NG_PB: u32 = 0x0000_0002;
const NG_SPB: u32 = 0x0000_0003;
const NG_EPB: u32 = 0x0000_0006;

const NG_OPT_ENDOFOPT: u16 = 0;
const NG_OPT_IF_TSRESOL: u16 = 9;
const NG_OPT_IF_TSOFFSET: u16 = 14;

const NS_PER_SEC: i64 = 1_000_000_000;

#[inline(always)]
fn rd_u16(b: &[u8], off: usize, big_endian: bool) -> u16 {
    let v = [b[off], b[off + 1]];
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

#[inline(always)]
fn rd_u32(b: &[u8], off: usize, big_endian: bool) -> u32 {
    let v = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

/// How a pcapng interface's timestamp units become nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsScale {
    /// Units are 10^-k s with k <= 9: multiply.
    Mul(u64),
    /// Units are 10^-k s with k > 9: divide.
    Div(u64),
    /// Units are 2^-p s.
    Pow2(u8),
}

impl TsScale {
    const MICROS: Self = Self::Mul(1_000);

    fn from_tsresol(v: u8) -> Self {
        if v & 0x80 != 0 {
            Self::Pow2(v & 0x7f)
        } else if v <= 9 {
            Self::Mul(10u64.pow(9 - u32::from(v)))
        } else {
            // 10^19 is the largest power of ten in a u64; anything finer than
            // 10^-28 s rounds every realistic timestamp to 0 anyway.
            Self::Div(10u64.pow(u32::from(v - 9).min(19)))
        }
    }

    /// Units → nanoseconds, plus the interface offset, saturating at the i64 range.
    #[inline]
    fn to_ns(self, units: u64, offset_ns: i64) -> i64 {
        let ns: i128 = match self {
            Self::Mul(m) => i128::from(units) * i128::from(m),
            Self::Div(d) => i128::from(units / d),
            Self::Pow2(p) => ((u128::from(units) * 1_000_000_000u128) >> p) as i128,
        };
        (ns + i128::from(offset_ns)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

/// What a pcapng Interface Description Block says about its packets.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    scale: TsScale,
    offset_ns: i64,
}

#[derive(Debug)]
enum State {
    Pcap {
        big_endian: bool,
        frac_mult: i64,
        rec_len: usize,
        link: LinkType,
        snaplen: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
        last_ts: i64,
    },
}

/// Sequential reader over a pcap or pcapng capture held in memory.
///
/// Use [`CaptureReader::next_packet`] in hot loops (or the [`Iterator`] impl,
/// which yields the same items).
#[derive(Debug)]
pub struct CaptureReader<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
    format: CaptureFormat,
    state: State,
}

impl<'a> CaptureReader<'a> {
    /// Detects the format from the magic number and validates the file header
    /// (for pcapng: the first Section Header Block).
    pub fn new(data: &'a [u8]) -> Result<Self, CaptureError> {
        if data.len() < 4 {
            return Err(CaptureError::TruncatedHeader {
                len: data.len(),
                need: 4,
            });
        }
        let magic_be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if magic_be == PCAPNG_SHB {
            let mut reader = Self {
                data,
                pos: 0,
                done: false,
                format: CaptureFormat::PcapNg,
                state: State::PcapNg {
                    big_endian: false,
                    interfaces: Vec::new(),
                    last_ts: 0,
                },
            };
            if data.len() < NG_SHB_MIN {
                return Err(CaptureError::TruncatedHeader {
                    len: data.len(),
                    need: NG_SHB_MIN,
                });
            }
            let len = reader.read_shb(0)?;
            if len > data.len() {
                return Err(CaptureError::TruncatedHeader {
                    len: data.len(),
                    need: len,
                });
            }
            check_block(data, 0, len, reader.big_endian())?;
            reader.pos = len;
            return Ok(reader);
        }
        let magic_le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let (magic, big_endian) = if is_pcap_magic(magic_le) {
            (magic_le, false)
        } else if is_pcap_magic(magic_be) {
            (magic_be, true)
        } else {
            return Err(CaptureError::NotACapture { magic: magic_be });
        };
        if data.len() < PCAP_FILE_HEADER_LEN {
            return Err(CaptureError::TruncatedHeader {
                len: data.len(),
                need: PCAP_FILE_HEADER_LEN,
            });
        }
        let major = rd_u16(data, 4, big_endian);
        let minor = rd_u16(data, 6, big_endian);
        if major != 2 {
            return Err(CaptureError::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
                offset: 0,
            });
        }
        let snaplen = rd_u32(data, 16, big_endian);
        // The upper six bits of the link-type field hold FCS information (LT_LINKTYPE).
        let link = LinkType::from_u32(rd_u32(data, 20, big_endian) & 0x03ff_ffff);
        let nanos = magic == PCAP_MAGIC_NANOS;
        Ok(Self {
            data,
            pos: PCAP_FILE_HEADER_LEN,
            done: false,
            format: CaptureFormat::Pcap { nanos, big_endian },
            state: State::Pcap {
                big_endian,
                frac_mult: if nanos { 1 } else { 1_000 },
                rec_len: if magic == PCAP_MAGIC_MODIFIED { 24 } else { 16 },
                link,
                snaplen,
            },
        })
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The file's link type (classic pcap) or that of the first interface
    /// declared so far in the current section (pcapng; `None` before any IDB).
    pub fn link_type(&self) -> Option<LinkType> {
        match &self.state {
            State::Pcap { link, .. } => Some(*link),
            State::PcapNg { interfaces, .. } => interfaces.first().map(|i| i.link),
        }
    }

    /// The snapshot length of the file (classic pcap) or of the first interface (pcapng).
    pub fn snaplen(&self) -> Option<u32> {
        match &self.state {
            State::Pcap { snaplen, .. } => Some(*snaplen),
            State::PcapNg { interfaces, .. } => interfaces.first().map(|i| i.snaplen),
        }
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next packet; `None` at the end of the data and after an error.
    #[inline]
    pub fn next_packet(&mut self) -> Option<Result<RawPacket<'a>, CaptureError>> {
        if self.done {
            return None;
        }
        let next = match self.state {
            State::Pcap { .. } => self.next_pcap(),
            State::PcapNg { .. } => self.next_pcapng(),
        };
        match next {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    #[inline]
    fn next_pcap(&mut self) -> Result<Option<RawPacket<'a>>, CaptureError> {
        let State::Pcap {
            big_endian,
            frac_mult,
            rec_len,
            link,
            snaplen,
        } = self.state
        else {
            return Ok(None);
        };
        let data = self.data;
        let off = self.pos;
        let rest = &data[off..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < rec_len {
            return Err(CaptureError::Truncated { offset: off as u64 });
        }
        let ts_sec = rd_u32(rest, 0, big_endian);
        let ts_frac = rd_u32(rest, 4, big_endian);
        let caplen = rd_u32(rest, 8, big_endian);
        let orig_len = rd_u32(rest, 12, big_endian);
        if caplen > PCAP_MAX_CAPLEN && caplen > snaplen {
            return Err(CaptureError::Malformed {
                offset: off as u64,
                what: "captured length larger than both the snaplen and 256 KiB",
            });
        }
        let body = &rest[rec_len..];
        let Some(bytes) = body.get(..caplen as usize) else {
            return Err(CaptureError::Truncated { offset: off as u64 });
        };
        self.pos = off + rec_len + caplen as usize;
        // u32 seconds * 1e9 + u32 fraction * 1000 stays below 2^63: no overflow.
        let ts_ns = i64::from(ts_sec) * NS_PER_SEC + i64::from(ts_frac) * frac_mult;
        Ok(Some(RawPacket {
            ts_ns,
            link_type: link,
            orig_len,
            data: bytes,
        }))
    }

    /// Parses (or re-parses, for later sections) a Section Header Block at
    /// `off`, switching the byte order and clearing the interface table.
    /// Returns the block length. The caller has checked that `off + 12 <= len`.
    fn read_shb(&mut self, off: usize) -> Result<usize, CaptureError> {
        let rest = &self.data[off..];
        let bom = &rest[8..12];
        let big_endian = match u32::from_le_bytes([bom[0], bom[1], bom[2], bom[3]]) {
            PCAPNG_BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == PCAPNG_BYTE_ORDER_MAGIC => true,
            _ => {
                return Err(CaptureError::Malformed {
                    offset: off as u64,
                    what: "bad byte-order magic in section header block",
                });
            }
        };
        let len = rd_u32(rest, 4, big_endian) as usize;
        if len < NG_SHB_MIN || !len.is_multiple_of(4) {
            return Err(CaptureError::Malformed {
                offset: off as u64,
                what: "section header block length is not a multiple of 4, or below 28",
            });
        }
        if rest.len() < 16 {
            return Err(CaptureError::Truncated { offset: off as u64 });
        }
        let major = rd_u16(rest, 12, big_endian);
        let minor = rd_u16(rest, 14, big_endian);
        if major != 1 {
            return Err(CaptureError::UnsupportedVersion {
                format: "pcapng",
                major,
                minor,
                offset: off as u64,
            });
        }
        if let State::PcapNg {
            big_endian: be,
            interfaces,
            ..
        } = &mut self.state
        {
            *be = big_endian;
            interfaces.clear();
        }
        Ok(len)
    }

    fn next_pcapng(&mut self) -> Result<Option<RawPacket<'a>>, CaptureError> {
        let data = self.data;
        // Each iteration consumes one whole block of at least 12 bytes, so the
        // loop ends after at most len/12 iterations.
        loop {
            let off = self.pos;
            let rest = &data[off..];
            if rest.is_empty() {
                return Ok(None);
            }
            if rest.len() < NG_BLOCK_MIN {
                return Err(CaptureError::Truncated { offset: off as u64 });
            }
            let btype_be = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if btype_be == PCAPNG_SHB {
                let len = self.read_shb(off)?;
                check_block(rest, off, len, self.big_endian())?;
                self.pos = off + len;
                continue;
            }
            let State::PcapNg {
                big_endian,
                ref mut interfaces,
                ref mut last_ts,
            } = self.state
            else {
                return Ok(None);
            };
            let btype = rd_u32(rest, 0, big_endian);
            let len = rd_u32(rest, 4, big_endian) as usize;
            let body = check_block(rest, off, len, big_endian)?;
            self.pos = off + len;
            match btype {
                NG_EPB => {
                    if body.len() < 20 {
                        return Err(malformed(off, "enhanced packet block too short"));
                    }
                    let if_id = rd_u32(body, 0, big_endian);
                    let units = (u64::from(rd_u32(body, 4, big_endian)) << 32)
                        | u64::from(rd_u32(body, 8, big_endian));
                    let caplen = rd_u32(body, 12, big_endian);
                    let orig_len = rd_u32(body, 16, big_endian);
                    let Some(bytes) = body[20..].get(..caplen as usize) else {
                        return Err(malformed(
                            off,
                            "captured length exceeds the enhanced packet block",
                        ));
                    };
                    let Some(iface) = interfaces.get(if_id as usize) else {
                        return Err(malformed(off, "packet refers to an undeclared interface"));
                    };
                    let ts_ns = iface.scale.to_ns(units, iface.offset_ns);
                    *last_ts = ts_ns;
                    return Ok(Some(RawPacket {
                        ts_ns,
                        link_type: iface.link,
                        orig_len,
                        data: bytes,
                    }));
                }
                NG_SPB => {
                    if body.len() < 4 {
                        return Err(malformed(off, "simple packet block too short"));
                    }
                    let Some(iface) = interfaces.first() else {
                        return Err(malformed(off, "simple packet block before any interface"));
                    };
                    let orig_len = rd_u32(body, 0, big_endian);
                    // The SPB has no captured-length field: the packet is the
                    // original length cut at the snaplen, and the block pads it.
                    let mut caplen = (orig_len as usize).min(body.len() - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    let bytes = &body[4..4 + caplen];
                    return Ok(Some(RawPacket {
                        ts_ns: *last_ts,
                        link_type: iface.link,
                        orig_len,
                        data: bytes,
                    }));
                }
                NG_PB => {
                    if body.len() < 20 {
                        return Err(malformed(off, "packet block too short"));
                    }
                    let if_id = rd_u16(body, 0, big_endian);
                    let units = (u64::from(rd_u32(body, 4, big_endian)) << 32)
                        | u64::from(rd_u32(body, 8, big_endian));
                    let caplen = rd_u32(body, 12, big_endian);
                    let orig_len = rd_u32(body, 16, big_endian);
                    let Some(bytes) = body[20..].get(..caplen as usize) else {
                        return Err(malformed(off, "captured length exceeds the packet block"));
                    };
                    let Some(iface) = interfaces.get(usize::from(if_id)) else {
                        return Err(malformed(off, "packet refers to an undeclared interface"));
                    };
                    let ts_ns = iface.scale.to_ns(units, iface.offset_ns);
                    *last_ts = ts_ns;
                    return Ok(Some(RawPacket {
                        ts_ns,
                        link_type: iface.link,
                        orig_len,
                        data: bytes,
                    }));
                }
                NG_IDB => {
                    if body.len() < 8 {
                        return Err(malformed(off, "interface description block too short"));
                    }
                    interfaces.push(parse_idb(body, big_endian));
                }
                _ => {}
            }
        }
    }

    fn big_endian(&self) -> bool {
        match self.state {
            State::Pcap { big_endian, .. } | State::PcapNg { big_endian, .. } => big_endian,
        }
    }
}

impl<'a> Iterator for CaptureReader<'a> {
    type Item = Result<RawPacket<'a>, CaptureError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}

impl std::iter::FusedIterator for CaptureReader<'_> {}

fn is_pcap_magic(m: u32) -> bool {
    matches!(
        m,
        PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS | PCAP_MAGIC_MODIFIED
    )
}

fn malformed(off: usize, what: &'static str) -> CaptureError {
    CaptureError::Malformed {
        offset: off as u64,
        what,
    }
}

/// Validates a pcapng block's framing (length sane, fully present, trailing
/// length equal) and returns its body (between the length fields).
#[inline]
fn check_block(
    rest: &[u8],
    off: usize,
    len: usize,
    big_endian: bool,
) -> Result<&[u8], CaptureError> {
    if len < NG_BLOCK_MIN || !len.is_multiple_of(4) {
        return Err(malformed(
            off,
            "block length is not a multiple of 4, or below 12",
        ));
    }
    let Some(block) = rest.get(..len) else {
        return Err(CaptureError::Truncated { offset: off as u64 });
    };
    if rd_u32(block, len - 4, big_endian) as usize != len {
        return Err(malformed(
            off,
            "block's trailing length differs from its leading length",
        ));
    }
    Ok(&block[8..len - 4])
}

/// Reads an IDB body (at least 8 bytes): link type, snaplen and the options
/// that affect timestamps. Malformed options end option parsing rather than
/// the file: the packets are still readable with default timestamps.
fn parse_idb(body: &[u8], big_endian: bool) -> Interface {
    let link = LinkType::from_u32(u32::from(rd_u16(body, 0, big_endian)));
    let snaplen = rd_u32(body, 4, big_endian);
    let mut iface = Interface {
        link,
        snaplen,
        scale: TsScale::MICROS,
        offset_ns: 0,
    };
    let mut opts = &body[8..];
    while opts.len() >= 4 {
        let code = rd_u16(opts, 0, big_endian);
        let olen = usize::from(rd_u16(opts, 2, big_endian));
        if code == NG_OPT_ENDOFOPT {
            break;
        }
        let Some(value) = opts[4..].get(..olen) else {
            break;
        };
        match code {
            NG_OPT_IF_TSRESOL if olen >= 1 => iface.scale = TsScale::from_tsresol(value[0]),
            NG_OPT_IF_TSOFFSET if olen >= 8 => {
                let secs = if big_endian {
                    i64::from_be_bytes([
                        value[0], value[1], value[2], value[3], value[4], value[5], value[6],
                        value[7],
                    ])
                } else {
                    i64::from_le_bytes([
                        value[0], value[1], value[2], value[3], value[4], value[5], value[6],
                        value[7],
                    ])
                };
                iface.offset_ns = secs.saturating_mul(NS_PER_SEC);
            }
            _ => {}
        }
        let padded = (olen + 3) & !3;
        opts = opts.get(4 + padded..).unwrap_or(&[]);
    }
    iface
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- builders -------------------------------------------------------

    fn put16(out: &mut Vec<u8>, v: u16, be: bool) {
        out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
    }

    fn put32(out: &mut Vec<u8>, v: u32, be: bool) {
        out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
    }

    fn pcap_header(magic: u32, be: bool, snaplen: u32, link: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put32(&mut out, magic, be);
        put16(&mut out, 2, be);
        put16(&mut out, 4, be);
        put32(&mut out, 0, be);
        put32(&mut out, 0, be);
        put32(&mut out, snaplen, be);
        put32(&mut out, link, be);
        out
    }

    fn pcap_record(out: &mut Vec<u8>, be: bool, sec: u32, frac: u32, orig: u32, data: &[u8]) {
        put32(out, sec, be);
        put32(out, frac, be);
        put32(out, data.len() as u32, be);
        put32(out, orig, be);
        out.extend_from_slice(data);
    }

    fn ng_block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
        let padded = (body.len() + 3) & !3;
        let len = (12 + padded) as u32;
        let mut out = Vec::new();
        put32(&mut out, btype, be);
        put32(&mut out, len, be);
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        put32(&mut out, len, be);
        out
    }

    fn ng_shb(be: bool) -> Vec<u8> {
        let mut body = Vec::new();
        put32(&mut body, PCAPNG_BYTE_ORDER_MAGIC, be);
        put16(&mut body, 1, be);
        put16(&mut body, 0, be);
        body.extend_from_slice(&(-1i64).to_le_bytes());
        // An shb_userappl option, to be skipped.
        put16(&mut body, 4, be);
        put16(&mut body, 5, be);
        body.extend_from_slice(b"test\0\0\0\0");
        put32(&mut body, 0, be);
        ng_block(be, PCAPNG_SHB, &body)
    }

    fn ng_idb(
        be: bool,
        link: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put16(&mut body, link, be);
        put16(&mut body, 0, be);
        put32(&mut body, snaplen, be);
        // if_name, to be skipped.
        put16(&mut body, 2, be);
        put16(&mut body, 3, be);
        body.extend_from_slice(b"lo\0\0");
        if let Some(r) = tsresol {
            put16(&mut body, NG_OPT_IF_TSRESOL, be);
            put16(&mut body, 1, be);
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            put16(&mut body, NG_OPT_IF_TSOFFSET, be);
            put16(&mut body, 8, be);
            body.extend_from_slice(&if be { o.to_be_bytes() } else { o.to_le_bytes() });
        }
        put16(&mut body, 0, be);
        put16(&mut body, 0, be);
        ng_block(be, NG_IDB, &body)
    }

    fn ng_epb(be: bool, if_id: u32, units: u64, orig: u32, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put32(&mut body, if_id, be);
        put32(&mut body, (units >> 32) as u32, be);
        put32(&mut body, units as u32, be);
        put32(&mut body, data.len() as u32, be);
        put32(&mut body, orig, be);
        body.extend_from_slice(data);
        body.resize((body.len() + 3) & !3, 0);
        // epb_flags option, to be ignored.
        put16(&mut body, 2, be);
        put16(&mut body, 4, be);
        put32(&mut body, 1, be);
        put32(&mut body, 0, be);
        ng_block(be, NG_EPB, &body)
    }

    fn ng_spb(be: bool, orig: u32, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put32(&mut body, orig, be);
        body.extend_from_slice(data);
        ng_block(be, NG_SPB, &body)
    }

    fn ng_pb(be: bool, if_id: u16, units: u64, orig: u32, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put16(&mut body, if_id, be);
        put16(&mut body, 0, be);
        put32(&mut body, (units >> 32) as u32, be);
        put32(&mut body, units as u32, be);
        put32(&mut body, data.len() as u32, be);
        put32(&mut body, orig, be);
        body.extend_from_slice(data);
        ng_block(be, NG_PB, &body)
    }

    fn collect(data: &[u8]) -> (Vec<RawPacket<'_>>, Option<CaptureError>) {
        let mut r = CaptureReader::new(data).expect("open");
        let mut pkts = Vec::new();
        let mut err = None;
        while let Some(item) = r.next_packet() {
            match item {
                Ok(p) => pkts.push(p),
                Err(e) => {
                    assert!(err.is_none(), "two errors");
                    err = Some(e);
                }
            }
        }
        assert!(r.next_packet().is_none(), "reader must stay finished");
        (pkts, err)
    }

    // ---- classic pcap ---------------------------------------------------

    #[test]
    fn classic_pcap_little_endian_micros() {
        let mut f = pcap_header(PCAP_MAGIC_MICROS, false, 65535, 1);
        pcap_record(&mut f, false, 1_600_000_000, 123_456, 60, &[1, 2, 3]);
        pcap_record(&mut f, false, 1_600_000_001, 999_999, 4, &[4, 5, 6, 7]);
        let r = CaptureReader::new(&f).expect("open");
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanos: false,
                big_endian: false
            }
        );
        assert_eq!(r.link_type(), Some(LinkType::Ethernet));
        assert_eq!(r.snaplen(), Some(65535));
        let (pkts, err) = collect(&f);
        assert_eq!(err, None);
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[0].ts_ns, 1_600_000_000_123_456_000);
        assert_eq!(pkts[0].orig_len, 60);
        assert_eq!(pkts[0].data, &[1, 2, 3]);
        assert_eq!(pkts[0].link_type, LinkType::Ethernet);
        assert_eq!(pkts[1].ts_ns, 1_600_000_001_999_999_000);
        assert_eq!(pkts[1].data, &[4, 5, 6, 7]);
    }

    #[test]
    fn classic_pcap_big_endian_nanos() {
        let mut f = pcap_header(PCAP_MAGIC_NANOS, true, 96, 113);
        pcap_record(&mut f, true, 7, 123_456_789, 1500, &[9; 96]);
        let r = CaptureReader::new(&f).expect("open");
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanos: true,
                big_endian: true
            }
        );
        let (pkts, err) = collect(&f);
        assert_eq!(err, None);
        assert_eq!(pkts.len(), 1);
        assert_eq!(pkts[0].ts_ns, 7_123_456_789);
        assert_eq!(pkts[0].orig_len, 1500);
        assert_eq!(pkts[0].data.len(), 96);
        assert_eq!(pkts[0].link_type, LinkType::LinuxSll);
    }

    #[test]
    fn classic_pcap_masks_fcs_bits_of_link_type() {
        // Bit 28 set, FCS length 4 in bits 29-31: still Ethernet.
        let f = pcap_header(PCAP_MAGIC_MICROS, false, 65535, 1 | 0x1000_0000 | (2 << 29));
        let r = CaptureReader::new(&f).expect("open");
        assert_eq!(r.link_type(), Some(LinkType::Ethernet));
        assert_eq!(collect(&f), (vec![], None));
    }

    #[test]
    fn modified_pcap_has_24_byte_records() {
        let mut f = pcap_header(PCAP_MAGIC_MODIFIED, false, 65535, 101);
        for (i, data) in [[0x45u8; 5], [0x60; 5]].iter().enumerate() {
            pcap_record(&mut f, false, i as u32, 5, 5, data);
            // Insert the 8 extra header bytes (ifindex, protocol, pkt_type, pad) before the data.
            let at = f.len() - 5;
            f.splice(at..at, [0u8; 8]);
        }
        let (pkts, err) = collect(&f);
        assert_eq!(err, None);
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[1].data, &[0x60; 5]);
        assert_eq!(pkts[1].ts_ns, 1_000_005_000);
        assert_eq!(pkts[1].link_type, LinkType::Raw);
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            CaptureReader::new(&[]).err(),
            Some(CaptureError::TruncatedHeader { len: 0, need: 4 })
        );
        assert_eq!(
            CaptureReader::new(b"GET / HTTP/1.1\r\n").err(),
            Some(CaptureError::NotACapture { magic: 0x4745_5420 })
        );
        let f = pcap_header(PCAP_MAGIC_MICROS, false, 65535, 1);
        assert_eq!(
            CaptureReader::new(&f[..20]).err(),
            Some(CaptureError::TruncatedHeader { len: 20, need: 24 })
        );
        let mut v = f.clone();
        v[4] = 3;
        assert!(matches!(
            CaptureReader::new(&v).err(),
            Some(CaptureError::UnsupportedVersion {
                format: "pcap",
                major: 3,
                ..
            })
        ));
        let shb = ng_shb(false);
        assert_eq!(
            CaptureReader::new(&shb[..20]).err(),
            Some(CaptureError::TruncatedHeader { len: 20, need: 28 })
        );
        assert_eq!(
            CaptureReader::new(&shb[..shb.len() - 4]).err(),
            Some(CaptureError::TruncatedHeader {
                len: shb.len() - 4,
                need: shb.len()
            })
        );
        let mut bad_bom = shb.clone();
        bad_bom[8] = 0;
        assert!(matches!(
            CaptureReader::new(&bad_bom).err(),
            Some(CaptureError::Malformed { offset: 0, .. })
        ));
        let mut bad_major = shb;
        bad_major[12] = 2;
        assert!(matches!(
            CaptureReader::new(&bad_major).err(),
            Some(CaptureError::UnsupportedVersion {
                format: "pcapng",
                major: 2,
                ..
            })
        ));
        // Error messages name the problem and the offset.
        let msg = CaptureError::Truncated { offset: 1234 }.to_string();
        assert!(msg.contains("truncated") && msg.contains("1234"), "{msg}");
        assert_eq!(CaptureError::Truncated { offset: 7 }.offset(), Some(7));
        assert_eq!(CaptureError::NotACapture { magic: 0 }.offset(), None);
    }

    #[test]
    fn classic_pcap_truncated_at_every_length() {
        let mut f = pcap_header(PCAP_MAGIC_MICROS, false, 65535, 1);
        let mut ends = vec![f.len()];
        for i in 0..3u8 {
            pcap_record(&mut f, false, 1, 2, 10, &vec![i; 10 + usize::from(i)]);
            ends.push(f.len());
        }
        for cut in 0..=f.len() {
            let data = &f[..cut];
            if cut < PCAP_FILE_HEADER_LEN {
                assert!(
                    matches!(
                        CaptureReader::new(data).err(),
                        Some(CaptureError::TruncatedHeader { .. })
                    ),
                    "cut {cut}"
                );
                continue;
            }
            let (pkts, err) = collect(data);
            let complete = ends.iter().filter(|&&e| e <= cut).count() - 1;
            assert_eq!(pkts.len(), complete, "cut {cut}");
            if ends.contains(&cut) {
                assert_eq!(err, None, "cut {cut}");
            } else {
                assert_eq!(
                    err,
                    Some(CaptureError::Truncated {
                        offset: ends[complete] as u64
                    }),
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn classic_pcap_absurd_caplen_is_malformed() {
        let mut f = pcap_header(PCAP_MAGIC_MICROS, false, 65535, 1);
        pcap_record(&mut f, false, 1, 2, 3, &[1, 2, 3]);
        let second = f.len();
        pcap_record(&mut f, false, 1, 2, 3, &[1, 2, 3]);
        f[second + 8..second + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        let (pkts, err) = collect(&f);
        assert_eq!(pkts.len(), 1);
        assert!(
            matches!(err, Some(CaptureError::Malformed { offset, .. }) if offset == second as u64)
        );
    }

    // ---- pcapng -------------------------------------------------------------

    #[test]
    fn pcapng_blocks_sections_and_timestamps() {
        let mut f = ng_shb(false);
        f.extend(ng_idb(false, 1, 65535, None, None)); // if 0: default microseconds
        f.extend(ng_idb(false, 101, 128, Some(9), Some(-10))); // if 1: ns, offset -10 s
        f.extend(ng_epb(false, 0, 1_700_000_000_000_001, 60, &[0xaa; 14]));
        f.extend(ng_block(false, 5, &[0; 20])); // ISB: skipped
        f.extend(ng_block(false, 0x0000_0bad, &[1, 2, 3])); // custom: skipped
        f.extend(ng_epb(false, 1, 20_000_000_005, 3, &[0x45, 0, 0]));
        f.extend(ng_spb(false, 5, &[1, 2, 3, 4, 5]));
        f.extend(ng_pb(false, 1, 30_000_000_000, 2, &[7, 8]));
        // Second section, big-endian: interfaces restart at 0.
        f.extend(ng_shb(true));
        f.extend(ng_idb(true, 229, 0, Some(0x80 | 10), Some(100))); // 2^-10 s, +100 s
        f.extend(ng_epb(true, 0, 1024 * 3 + 512, 40, &[0x60; 40]));
        f.extend(ng_spb(true, 300, &[0x61; 44]));

        let mut r = CaptureReader::new(&f).expect("open");
        assert_eq!(r.format(), CaptureFormat::PcapNg);
        assert_eq!(r.link_type(), None, "no IDB read yet");
        let p = r.next_packet().expect("some").expect("ok");
        assert_eq!(r.link_type(), Some(LinkType::Ethernet));
        assert_eq!(p.ts_ns, 1_700_000_000_000_001_000);
        assert_eq!(
            (p.link_type, p.orig_len, p.data),
            (LinkType::Ethernet, 60, &[0xaa; 14][..])
        );

        let (pkts, err) = collect(&f);
        assert_eq!(err, None);
        assert_eq!(pkts.len(), 6);
        assert_eq!(pkts[1].ts_ns, 10_000_000_005);
        assert_eq!(pkts[1].link_type, LinkType::Raw);
        assert_eq!(pkts[1].data, &[0x45, 0, 0]);
        // SPB: interface 0, previous timestamp, data cut at the original length.
        assert_eq!(pkts[2].link_type, LinkType::Ethernet);
        assert_eq!(pkts[2].ts_ns, pkts[1].ts_ns);
        assert_eq!((pkts[2].orig_len, pkts[2].data), (5, &[1, 2, 3, 4, 5][..]));
        // Obsolete Packet Block.
        assert_eq!(pkts[3].ts_ns, 20_000_000_000);
        assert_eq!(
            (pkts[3].link_type, pkts[3].data),
            (LinkType::Raw, &[7, 8][..])
        );
        // Second section: 3.5 s in 2^-10 units, plus 100 s.
        assert_eq!(pkts[4].ts_ns, 103_500_000_000);
        assert_eq!(
            (pkts[4].link_type, pkts[4].data.len()),
            (LinkType::Ipv6, 40)
        );
        // SPB with snaplen 0 (unlimited): everything in the block up to orig_len.
        assert_eq!((pkts[5].orig_len, pkts[5].data.len()), (300, 44));
        assert_eq!(pkts[5].ts_ns, pkts[4].ts_ns);
    }

    #[test]
    fn pcapng_spb_is_cut_at_the_snaplen() {
        let mut f = ng_shb(false);
        f.extend(ng_idb(false, 1, 8, None, None));
        f.extend(ng_spb(false, 100, &[3; 12]));
        let (pkts, err) = collect(&f);
        assert_eq!(err, None);
        assert_eq!((pkts[0].orig_len, pkts[0].data), (100, &[3; 8][..]));
    }

    #[test]
    fn tsresol_conversions() {
        assert_eq!(TsScale::from_tsresol(6).to_ns(1, 0), 1_000);
        assert_eq!(TsScale::from_tsresol(9).to_ns(1, 0), 1);
        assert_eq!(TsScale::from_tsresol(0).to_ns(2, 5), 2_000_000_005);
        assert_eq!(TsScale::from_tsresol(12).to_ns(123_456_789, 0), 123_456);
        assert_eq!(TsScale::from_tsresol(127).to_ns(u64::MAX, 0), 1); // divisor capped at 10^19
        assert_eq!(TsScale::from_tsresol(0x80).to_ns(3, 0), 3_000_000_000);
        assert_eq!(
            TsScale::from_tsresol(0x80 | 20).to_ns(1 << 20, 0),
            1_000_000_000
        );
        assert_eq!(TsScale::from_tsresol(0x80 | 127).to_ns(u64::MAX, 0), 0);
        // Saturates instead of wrapping.
        assert_eq!(TsScale::from_tsresol(0).to_ns(u64::MAX, 0), i64::MAX);
        assert_eq!(TsScale::from_tsresol(9).to_ns(0, i64::MIN), i64::MIN);
    }

    #[test]
    fn pcapng_truncated_at_every_length() {
        for be in [false, true] {
            let mut f = ng_shb(be);
            let header_end = f.len();
            f.extend(ng_idb(be, 1, 65535, Some(9), None));
            let mut packet_ends = Vec::new();
            for i in 0..3u8 {
                f.extend(ng_epb(
                    be,
                    0,
                    u64::from(i),
                    50,
                    &vec![i; 20 + usize::from(i)],
                ));
                packet_ends.push(f.len());
            }
            let idb_end = packet_ends[0] - ng_epb(be, 0, 0, 50, &[0; 20]).len();
            let mut block_ends = vec![header_end, idb_end];
            block_ends.extend(&packet_ends);
            for cut in 0..=f.len() {
                let data = &f[..cut];
                if cut < header_end {
                    assert!(
                        matches!(
                            CaptureReader::new(data).err(),
                            Some(CaptureError::TruncatedHeader { .. })
                        ),
                        "cut {cut}"
                    );
                    continue;
                }
                let (pkts, err) = collect(data);
                let complete = packet_ends.iter().filter(|&&e| e <= cut).count();
                assert_eq!(pkts.len(), complete, "be {be} cut {cut}");
                if block_ends.contains(&cut) {
                    assert_eq!(err, None, "be {be} cut {cut}");
                } else {
                    let start = *block_ends
                        .iter()
                        .filter(|&&e| e <= cut)
                        .max()
                        .expect("header");
                    assert_eq!(
                        err,
                        Some(CaptureError::Truncated {
                            offset: start as u64
                        }),
                        "be {be} cut {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn pcapng_structural_errors_stop_the_reader() {
        let mut base = ng_shb(false);
        base.extend(ng_idb(false, 1, 65535, None, None));
        let good = ng_epb(false, 0, 1, 10, &[1; 10]);
        let at = base.len() + good.len();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("length not multiple of 4", {
                let mut b = good.clone();
                b[4] = b[4].wrapping_add(1);
                b
            }),
            ("length below 12", {
                let mut b = good.clone();
                b[4..8].copy_from_slice(&8u32.to_le_bytes());
                b
            }),
            ("trailing length mismatch", {
                let mut b = good.clone();
                let n = b.len();
                b[n - 4] ^= 4;
                b
            }),
            ("undeclared interface", ng_epb(false, 1, 1, 10, &[1; 10])),
            ("caplen beyond block", {
                let mut b = good.clone();
                b[20..24].copy_from_slice(&1000u32.to_le_bytes());
                b
            }),
            ("short EPB", ng_block(false, NG_EPB, &[0; 16])),
            ("short IDB", ng_block(false, NG_IDB, &[0; 4])),
            ("SHB with bad byte order", {
                let mut b = ng_shb(false);
                b[8] = 0x99;
                b
            }),
        ];
        for (what, bad) in cases {
            let mut f = base.clone();
            f.extend(&good);
            f.extend(&bad);
            f.extend(&good);
            let (pkts, err) = collect(&f);
            assert_eq!(pkts.len(), 1, "{what}");
            assert!(
                matches!(err, Some(CaptureError::Malformed { offset, .. }) if offset == at as u64),
                "{what}: {err:?}"
            );
        }
        // An SPB before any interface.
        let mut f = ng_shb(false);
        f.extend(ng_spb(false, 1, &[1]));
        assert!(matches!(
            collect(&f).1,
            Some(CaptureError::Malformed { .. })
        ));
        // A new section forgets the previous section's interfaces.
        let mut f = base.clone();
        f.extend(ng_shb(false));
        f.extend(&good);
        assert!(matches!(
            collect(&f).1,
            Some(CaptureError::Malformed { .. })
        ));
    }

    #[test]
    fn malformed_idb_options_are_ignored() {
        let mut body = Vec::new();
        put16(&mut body, 1, false);
        put16(&mut body, 0, false);
        put32(&mut body, 65535, false);
        put16(&mut body, NG_OPT_IF_TSRESOL, false);
        put16(&mut body, 200, false); // runs past the block
        body.extend_from_slice(&[9, 0, 0, 0]);
        let mut f = ng_shb(false);
        f.extend(ng_block(false, NG_IDB, &body));
        f.extend(ng_epb(false, 0, 5, 1, &[1]));
        let (pkts, err) = collect(&f);
        assert_eq!(err, None);
        assert_eq!(pkts[0].ts_ns, 5_000, "default microsecond resolution kept");
    }

    #[test]
    fn link_type_numbers() {
        for (n, lt) in [
            (0, LinkType::Null),
            (1, LinkType::Ethernet),
            (101, LinkType::Raw),
            (108, LinkType::Loop),
            (113, LinkType::LinuxSll),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
            (276, LinkType::LinuxSll2),
            (147, LinkType::Other(147)),
        ] {
            assert_eq!(LinkType::from_u32(n), lt);
            assert_eq!(lt.to_u32(), n);
        }
        assert_eq!(LinkType::from_u32(12), LinkType::Raw);
        assert_eq!(LinkType::from_u32(14), LinkType::Raw);
        assert_eq!(LinkType::Other(147).to_string(), "linktype 147");
        assert_eq!(LinkType::LinuxSll2.to_string(), "linux_sll2");
    }

    // ---- robustness -----------------------------------------------------------

    /// Reads everything; returns the number of items. Panics (failing the
    /// test) if the reader does not finish within a bound that follows from
    /// the input size.
    fn drain(data: &[u8]) -> usize {
        let Ok(mut r) = CaptureReader::new(data) else {
            return 0;
        };
        let bound = data.len() / 12 + 2;
        let mut n = 0;
        while let Some(item) = r.next_packet() {
            if let Ok(p) = item {
                let start = p.data.as_ptr() as usize - data.as_ptr() as usize;
                assert!(start + p.data.len() <= data.len());
            }
            n += 1;
            assert!(n <= bound, "reader does not terminate");
        }
        n
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            drain(&data);
        }

        #[test]
        fn arbitrary_pcap_body_never_panics(
            magic in proptest::sample::select(vec![PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_MAGIC_MODIFIED]),
            be in proptest::prelude::any::<bool>(),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
        ) {
            let mut f = pcap_header(magic, be, 64, 1);
            f.extend(body);
            drain(&f);
        }

        #[test]
        fn arbitrary_pcapng_body_never_panics(
            be in proptest::prelude::any::<bool>(),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
        ) {
            let mut f = ng_shb(be);
            f.extend(ng_idb(be, 1, 64, Some(0x85), None));
            f.extend(body);
            drain(&f);
        }

        /// Valid files with a few bytes overwritten: mostly-plausible lengths
        /// exercise the framing checks far better than pure noise.
        #[test]
        fn mutated_pcapng_never_panics(
            be in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 1..8),
        ) {
            let mut f = ng_shb(be);
            f.extend(ng_idb(be, 1, 64, Some(9), Some(3)));
            f.extend(ng_epb(be, 0, 77, 60, &[1; 30]));
            f.extend(ng_spb(be, 60, &[2; 30]));
            f.extend(ng_pb(be, 0, 78, 60, &[3; 30]));
            f.extend(ng_shb(!be));
            f.extend(ng_idb(!be, 113, 0, None, None));
            f.extend(ng_epb(!be, 0, 79, 60, &[4; 30]));
            for (at, v) in edits {
                let n = f.len();
                f[at % n] = v;
            }
            drain(&f);
        }
    }
}
