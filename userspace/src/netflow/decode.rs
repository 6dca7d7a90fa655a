//! The export-datagram decoder: NetFlow v5, NetFlow v9 and IPFIX datagrams →
//! [`FlowRecord`]s, with the per-exporter template cache and the counters.
//! The field mapping and its rationale are in the parent module's docs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hashbrown::HashMap;
use osprey_segment::records::{EndReason, FlowRecord, TimestampNs};

use super::{NetflowSkip, NetflowStats, Session, Version};

/// IANA enterprise number of RFC 5103 reverse information elements.
pub const REVERSE_PEN: u32 = 29305;

/// Most templates kept at once (over all exporters and domains). A hostile or
/// broken exporter announcing endless template ids must not grow memory
/// without bound; beyond this, new templates are counted as
/// [`NetflowSkip::TemplateCacheFull`] (redefinitions of known ones still apply).
pub const MAX_TEMPLATES: usize = 65_536;

/// Most exporters (session and domain) whose options state is kept, and
/// most entries in [`NetflowStats::sampling`]; same reasoning.
const MAX_EXPORTERS: usize = 65_536;

/// Field length meaning "variable length" (RFC 7011 §7).
const VARLEN: u16 = 0xffff;

/// NetFlow v5 header and record sizes; v5 datagrams carry at most 30 records.
const V5_HEADER: usize = 24;
const V5_RECORD: usize = 48;
const V5_MAX_COUNT: usize = 30;

/// Seconds between the NTP epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// One field specifier of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSpec {
    /// Information element id (enterprise bit cleared).
    id: u16,
    /// Enterprise number, 0 for IANA elements.
    pen: u32,
    /// Length in bytes, [`VARLEN`] for variable-length fields.
    len: u16,
    /// The same element occurs earlier in the template. Only the first
    /// occurrence is used: RFC 7011 §8 orders repeats by the metering
    /// process's treatment, so the first is the outer header as observed
    /// (e.g. a tunnel's endpoints before the inner addresses), which is also
    /// what tshark shows.
    repeat: bool,
}

/// A learned template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    fields: Vec<FieldSpec>,
    /// Options template: its records describe the exporter, not flows.
    options: bool,
    /// Smallest record length: fixed fields plus one length byte per
    /// variable-length field. Set remainders shorter than this are padding.
    min_len: usize,
}

/// Template cache key: templates are scoped to one transport session (the
/// exporter's and collector's addresses and ports, RFC 7011 §8; RFC 3954
/// §5.1 likewise per exporter), one protocol version and one v9 source id /
/// IPFIX observation domain. An exporter that restarts on a new source port
/// must (and does) send its templates again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TemplateKey {
    exporter: Session,
    version: u8,
    domain: u32,
    id: u16,
}

/// What an exporter told us about itself in options records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ExporterInfo {
    /// systemInitTimeMilliseconds (IE 160), for sysUpTime-relative times.
    sys_init_ms: Option<u64>,
    /// The announced sampling interval (1 in N packets).
    sampling: Option<u64>,
}

/// How to treat announced sampling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sampling {
    /// Store counters as the exporter reported them; count and report the
    /// sampling seen (the default: a silent multiplication would make
    /// sampled and unsampled exporters look alike).
    #[default]
    AsReported,
    /// Multiply packets and bytes by the announced interval (1 in N → × N).
    Scale,
}

/// Decodes export datagrams. One decoder holds the template cache of every
/// exporter it has seen, so feed it all datagrams of a collection in order.
#[derive(Debug, Default)]
pub struct NetflowDecoder {
    /// Shared so a data set can hold its template while the cache changes.
    templates: HashMap<TemplateKey, Arc<Template>>,
    exporters: HashMap<(Session, u8, u32), ExporterInfo>,
    sampling: Sampling,
    stats: NetflowStats,
    /// Template and data records read from the current datagram (v9 count check).
    seen: usize,
}

/// The header fields a record's times are relative to.
#[derive(Debug, Clone, Copy)]
struct HeaderTime {
    /// Export time, ns since the epoch.
    export_ns: TimestampNs,
    /// v5/v9: the exporter's uptime at export, ms (IPFIX: none).
    sys_uptime_ms: Option<u32>,
}

impl NetflowDecoder {
    /// A decoder that treats announced sampling as `sampling` says.
    pub fn new(sampling: Sampling) -> Self {
        NetflowDecoder { sampling, ..Self::default() }
    }

    /// The counters so far.
    pub fn stats(&self) -> &NetflowStats {
        &self.stats
    }

    /// Mutable counters (the pcap front end adds its own).
    pub(super) fn stats_mut(&mut self) -> &mut NetflowStats {
        &mut self.stats
    }

    /// Takes the counters out, leaving the templates in place.
    pub fn take_stats(&mut self) -> NetflowStats {
        std::mem::take(&mut self.stats)
    }

    /// Number of templates currently cached.
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    fn note_sampling(&mut self, v: Version, exporter: IpAddr, domain: u32, n: u64) {
        let key = (v, exporter, domain);
        if self.stats.sampling.len() < MAX_EXPORTERS || self.stats.sampling.contains_key(&key) {
            self.stats.sampling.insert(key, n);
        }
    }

    fn skip(&mut self, why: NetflowSkip) {
        *self.stats.skipped.entry(why).or_default() += 1;
    }

    /// Decodes one export datagram (a UDP payload) of the transport session
    /// `exporter`, appending its flow records to `out`. Malformed parts are
    /// counted in [`NetflowStats::skipped`] and skipped; nothing here panics
    /// on any input. Returns how many records were appended.
    pub fn decode(&mut self, exporter: Session, datagram: &[u8], out: &mut Vec<FlowRecord>) -> usize {
        let before = out.len();
        self.stats.datagrams += 1;
        let Some(version) = be16(datagram, 0) else {
            self.skip(NetflowSkip::TruncatedHeader);
            return 0;
        };
        match version {
            5 => self.v5(exporter, datagram, out),
            9 => self.v9(exporter, datagram, out),
            10 => self.ipfix(exporter, datagram, out),
            _ => self.skip(NetflowSkip::NotNetflow),
        }
        out.len() - before
    }

    fn v5(&mut self, exporter: Session, d: &[u8], out: &mut Vec<FlowRecord>) {
        let (Some(count), Some(uptime), Some(secs), Some(nsecs), Some(sampling)) = (be16(d, 2), be32(d, 4), be32(d, 8), be32(d, 12), be16(d, 22))
        else {
            self.skip(NetflowSkip::TruncatedHeader);
            return;
        };
        let count = usize::from(count);
        if count == 0 || count > V5_MAX_COUNT {
            self.skip(NetflowSkip::V5BadCount);
            return;
        }
        if d.len() < V5_HEADER + count * V5_RECORD {
            self.skip(NetflowSkip::V5Truncated);
            return;
        }
        self.stats.by_version[Version::V5.index()].datagrams += 1;
        // Top two bits: sampling mode; low 14: the interval (0 = unsampled).
        let interval = u64::from(sampling & 0x3fff);
        let header = HeaderTime { export_ns: i64::from(secs) * 1_000_000_000 + i64::from(nsecs.min(999_999_999)), sys_uptime_ms: Some(uptime) };
        for i in 0..count {
            let r = &d[V5_HEADER + i * V5_RECORD..V5_HEADER + (i + 1) * V5_RECORD];
            let f = |o: usize| u32::from_be_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
            let h = |o: usize| u16::from_be_bytes([r[o], r[o + 1]]);
            let mut rec = Fields {
                src4: Some([r[0], r[1], r[2], r[3]]),
                dst4: Some([r[4], r[5], r[6], r[7]]),
                first_uptime: Some(f(24)),
                last_uptime: Some(f(28)),
                src_port: Some(h(32)),
                dst_port: Some(h(34)),
                tcp_flags: r[37],
                proto: r[38],
                ..Fields::default()
            };
            rec.counters[PACKETS_SLOT] = Some(u64::from(f(16)));
            rec.counters[OCTETS_SLOT] = Some(u64::from(f(20)));
            if interval > 1 {
                rec.sampling = Some(interval);
                self.note_sampling(Version::V5, exporter.exporter, 0, interval);
            }
            if let Some(flow) = self.finish_record(Version::V5, &rec, header, ExporterInfo::default()) {
                out.push(flow);
            }
        }
    }

    fn v9(&mut self, exporter: Session, d: &[u8], out: &mut Vec<FlowRecord>) {
        let (Some(count), Some(uptime), Some(secs), Some(source_id)) = (be16(d, 2), be32(d, 4), be32(d, 8), be32(d, 16)) else {
            self.skip(NetflowSkip::TruncatedHeader);
            return;
        };
        self.stats.by_version[Version::V9.index()].datagrams += 1;
        let header = HeaderTime { export_ns: i64::from(secs) * 1_000_000_000, sys_uptime_ms: Some(uptime) };
        // The header's count (records of all kinds) does not delimit
        // anything: the flowset lengths do, and some exporters under-count
        // (Ubiquiti sends 2 with data after its 2 templates). But fewer
        // records than announced, with nothing else wrong, means the
        // datagram lost whole flowsets (cut at a flowset boundary, which v9,
        // having no total length, cannot otherwise reveal).
        let skipped_before = self.stats.skipped_total();
        self.seen = 0;
        self.sets(Version::V9, exporter, source_id, &d[20..], header, out);
        if self.seen < usize::from(count) && self.stats.skipped_total() == skipped_before {
            self.skip(NetflowSkip::V9CountShort);
        }
    }

    fn ipfix(&mut self, exporter: Session, d: &[u8], out: &mut Vec<FlowRecord>) {
        let (Some(len), Some(secs), Some(domain)) = (be16(d, 2), be32(d, 4), be32(d, 12)) else {
            self.skip(NetflowSkip::TruncatedHeader);
            return;
        };
        let len = usize::from(len);
        if len < 16 || len > d.len() {
            self.skip(NetflowSkip::IpfixBadLength);
            return;
        }
        self.stats.by_version[Version::Ipfix.index()].datagrams += 1;
        let header = HeaderTime { export_ns: i64::from(secs) * 1_000_000_000, sys_uptime_ms: None };
        // Bytes after the message length (e.g. Ethernet padding kept in a
        // payload file) are not part of the message.
        self.sets(Version::Ipfix, exporter, domain, &d[16..len], header, out);
    }

    /// Walks the (flow)sets of a v9 or IPFIX message body.
    fn sets(&mut self, v: Version, exporter: Session, domain: u32, mut body: &[u8], header: HeaderTime, out: &mut Vec<FlowRecord>) {
        let (tpl_id, opt_id) = if v == Version::V9 { (0, 1) } else { (2, 3) };
        while !body.is_empty() {
            let (Some(id), Some(len)) = (be16(body, 0), be16(body, 2)) else {
                // v9 allows trailing padding after the last flowset (Palo Alto
                // pads datagrams with zeros); fewer than 4 bytes cannot be a set.
                if body.iter().any(|&b| b != 0) {
                    self.skip(NetflowSkip::SetTruncated);
                }
                return;
            };
            let len = usize::from(len);
            if len < 4 || len > body.len() {
                if id == 0 && len == 0 && body.iter().all(|&b| b == 0) {
                    // Zero padding to the end of the datagram, not a set.
                    return;
                }
                self.skip(NetflowSkip::SetTruncated);
                return;
            }
            let set = &body[4..len];
            body = &body[len..];
            if id == tpl_id {
                self.template_set(v, exporter, domain, set, false);
            } else if id == opt_id {
                self.template_set(v, exporter, domain, set, true);
            } else if id < 256 {
                self.skip(NetflowSkip::ReservedSetId);
            } else {
                self.data_set(v, exporter, domain, id, set, header, out);
            }
        }
    }

    fn template_set(&mut self, v: Version, exporter: Session, domain: u32, mut set: &[u8], options: bool) {
        // Records are at least 4 bytes; fewer left is padding.
        while set.len() >= 4 {
            let parsed = if v == Version::V9 && options { parse_v9_options_template(set) } else { parse_template(set, v == Version::Ipfix, options) };
            let (id, tpl, used) = match parsed {
                Ok(p) => p,
                Err(why) => {
                    self.skip(why);
                    return;
                }
            };
            set = &set[used..];
            self.seen += 1;
            let version = v.wire();
            match tpl {
                None => {
                    // IPFIX withdrawal (field count 0). The set id's own number
                    // as template id withdraws every template of that kind.
                    self.stats.template_withdrawals += 1;
                    let all = (!options && id == 2) || (options && id == 3);
                    if all {
                        self.templates.retain(|k, t| !(k.exporter == exporter && k.version == version && k.domain == domain && t.options == options));
                    } else {
                        self.templates.remove(&TemplateKey { exporter, version, domain, id });
                    }
                }
                Some(tpl) => {
                    if id < 256 {
                        self.skip(NetflowSkip::BadTemplate);
                        continue;
                    }
                    let key = TemplateKey { exporter, version, domain, id };
                    if self.templates.len() >= MAX_TEMPLATES && !self.templates.contains_key(&key) {
                        self.skip(NetflowSkip::TemplateCacheFull);
                        continue;
                    }
                    let counters = &mut self.stats.by_version[v.index()];
                    if tpl.options {
                        counters.options_templates += 1;
                    } else {
                        counters.templates += 1;
                    }
                    self.templates.insert(key, Arc::new(tpl));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "internal helper: the header context of one set")]
    fn data_set(&mut self, v: Version, exporter: Session, domain: u32, id: u16, set: &[u8], header: HeaderTime, out: &mut Vec<FlowRecord>) {
        let key = TemplateKey { exporter, version: v.wire(), domain, id };
        // Templates must come first: RFC 7011 §8 lets a collector drop data
        // it has no template for, and nfdump, pmacct, GoFlow2 and Logstash
        // all do. See the module docs.
        let Some(tpl) = self.templates.get(&key) else {
            self.skip(NetflowSkip::NoTemplate);
            return;
        };
        if tpl.min_len == 0 {
            // A template of only zero-length fields describes empty records;
            // a set of them cannot be delimited.
            self.skip(NetflowSkip::ZeroLengthRecord);
            return;
        }
        let tpl = Arc::clone(tpl);
        let info_key = (exporter, v.wire(), domain);
        let mut rest = set;
        while rest.len() >= tpl.min_len {
            let mut f = Fields::default();
            let Some(used) = read_record(&tpl, rest, &mut f) else {
                self.skip(NetflowSkip::BadRecord);
                return;
            };
            rest = &rest[used..];
            self.seen += 1;
            if tpl.options {
                self.stats.by_version[v.index()].option_records += 1;
                if f.sys_init_ms.is_none() && f.sampling.is_none() {
                    continue;
                }
                if self.exporters.len() >= MAX_EXPORTERS && !self.exporters.contains_key(&info_key) {
                    continue;
                }
                let info = self.exporters.entry(info_key).or_default();
                if let Some(ms) = f.sys_init_ms {
                    info.sys_init_ms = Some(ms);
                }
                match f.sampling {
                    // An interval of 1 (or 0) announces that sampling is off.
                    Some(n) if n > 1 => {
                        info.sampling = Some(n);
                        self.note_sampling(v, exporter.exporter, domain, n);
                    }
                    Some(_) => info.sampling = None,
                    None => {}
                }
                continue;
            }
            let info = self.exporters.get(&info_key).copied().unwrap_or_default();
            if let Some(n) = f.sampling.filter(|&n| n > 1) {
                // The data record carries its own interval.
                self.note_sampling(v, exporter.exporter, domain, n);
            }
            if let Some(flow) = self.finish_record(v, &f, header, info) {
                out.push(flow);
            }
        }
    }

    /// Turns decoded fields into a record (or counts why not).
    fn finish_record(&mut self, v: Version, f: &Fields, header: HeaderTime, info: ExporterInfo) -> Option<FlowRecord> {
        let (Some(src_ip), Some(dst_ip)) = (f.src_ip(), f.dst_ip()) else {
            self.stats.by_version[v.index()].without_addresses += 1;
            return None;
        };
        let (ts_start, ts_end) = f.times(header, info);
        let interval = f.sampling.or(info.sampling).filter(|&n| n > 1);
        if interval.is_some() {
            self.stats.sampled_records += 1;
        } else if f.sampler_id.is_some_and(|id| id != 0) {
            self.stats.unknown_sampling_records += 1;
        }
        let scale = match (self.sampling, interval) {
            (Sampling::Scale, Some(n)) => n,
            _ => 1,
        };
        let mut dst_port = f.dst_port.unwrap_or(0);
        if matches!(f.proto, 1 | 58) && dst_port == 0 {
            // Some exporters put ICMP type/code in its own element instead of
            // the destination port (v5 convention, which FlowRecord follows).
            dst_port = f.icmp_type_code.unwrap_or(0);
        }
        let tcp_flags = f.tcp_flags;
        // Either direction's flags are evidence of how the flow ended.
        let all_flags = tcp_flags | f.rev_tcp_flags;
        let end_reason = match f.end_reason {
            Some(1) => EndReason::Idle,
            Some(2) => EndReason::Active,
            Some(3) => end_by_flags(f.proto, all_flags).unwrap_or(EndReason::Fin),
            Some(4) => EndReason::Flush,
            Some(5) => EndReason::Evicted,
            _ => end_by_flags(f.proto, all_flags).unwrap_or(EndReason::Idle),
        };
        self.stats.by_version[v.index()].records += 1;
        Some(FlowRecord {
            ts_start,
            ts_end,
            proto: f.proto,
            src_ip,
            src_port: f.src_port.unwrap_or(0),
            dst_ip,
            dst_port,
            vlan: f.vlan.unwrap_or(0) & 0x0fff,
            packets: f.packets().saturating_mul(scale),
            bytes: f.octets().saturating_mul(scale),
            rev_packets: f.rev_packets().saturating_mul(scale),
            rev_bytes: f.rev_octets().saturating_mul(scale),
            tcp_flags,
            rev_tcp_flags: f.rev_tcp_flags,
            end_reason,
        })
    }
}

/// A TCP flow that saw RST or FIN was ended by it (exporters expire TCP
/// flows on FIN/RST); RST wins when FIN is absent.
fn end_by_flags(proto: u8, flags: u8) -> Option<EndReason> {
    if proto != 6 {
        return None;
    }
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    if flags & RST != 0 && flags & FIN == 0 {
        Some(EndReason::Rst)
    } else if flags & (FIN | RST) != 0 {
        Some(EndReason::Fin)
    } else {
        None
    }
}

/// Parses one v9 template or IPFIX (options) template record. Returns the
/// template id, the template (`None` for an IPFIX withdrawal) and the bytes used.
fn parse_template(b: &[u8], ipfix: bool, options: bool) -> Result<(u16, Option<Template>, usize), NetflowSkip> {
    let (Some(id), Some(count)) = (be16(b, 0), be16(b, 2)) else {
        return Err(NetflowSkip::BadTemplate);
    };
    if count == 0 {
        // IPFIX withdrawal (RFC 7011 §8.1): template id and field count 0,
        // for options templates too. v9 has no withdrawal.
        return if ipfix { Ok((id, None, 4)) } else { Err(NetflowSkip::BadTemplate) };
    }
    let mut off = 4;
    if options {
        // IPFIX options template (v9 has its own layout): scope field count.
        let scope = be16(b, 4).ok_or(NetflowSkip::BadTemplate)?;
        if scope == 0 || scope > count {
            return Err(NetflowSkip::BadTemplate);
        }
        off = 6;
    }
    let mut fields = Vec::with_capacity(usize::from(count).min(b.len() / 4));
    for _ in 0..count {
        let (Some(raw_id), Some(len)) = (be16(b, off), be16(b, off + 2)) else {
            return Err(NetflowSkip::BadTemplate);
        };
        off += 4;
        let mut pen = 0;
        let mut id16 = raw_id;
        if ipfix && raw_id & 0x8000 != 0 {
            pen = be32(b, off).ok_or(NetflowSkip::BadTemplate)?;
            off += 4;
            id16 = raw_id & 0x7fff;
        }
        fields.push(FieldSpec { id: id16, pen, len, repeat: false });
    }
    Ok((id, Some(template(fields, options)), off))
}

/// Parses one NetFlow v9 options template record (RFC 3954 §6.1): scope and
/// option lengths are in bytes, and the record is padded to 4 bytes.
fn parse_v9_options_template(b: &[u8]) -> Result<(u16, Option<Template>, usize), NetflowSkip> {
    let (Some(id), Some(scope_len), Some(opt_len)) = (be16(b, 0), be16(b, 2), be16(b, 4)) else {
        return Err(NetflowSkip::BadTemplate);
    };
    let (scope_len, opt_len) = (usize::from(scope_len), usize::from(opt_len));
    if scope_len % 4 != 0 || opt_len % 4 != 0 || scope_len + opt_len == 0 {
        return Err(NetflowSkip::BadTemplate);
    }
    let end = 6 + scope_len + opt_len;
    if end > b.len() {
        return Err(NetflowSkip::BadTemplate);
    }
    let mut fields = Vec::with_capacity((scope_len + opt_len) / 4);
    let mut off = 6;
    while off < end {
        let (Some(fid), Some(len)) = (be16(b, off), be16(b, off + 2)) else {
            return Err(NetflowSkip::BadTemplate);
        };
        // Scope field types (1 system, 2 interface, ...) are not information
        // elements: give them an id no mapping uses, so they are only skipped.
        let id = if off < 6 + scope_len { u16::MAX } else { fid };
        fields.push(FieldSpec { id, pen: 0, len, repeat: false });
        off += 4;
    }
    // Padding to a 4-byte boundary (present when 6 + lengths is not aligned).
    let used = (end + 3) & !3;
    Ok((id, Some(template(fields, true)), used.min(b.len())))
}

fn template(mut fields: Vec<FieldSpec>, options: bool) -> Template {
    // Zero-length fields carry nothing (some exporters send them); dropping
    // them also means every field read consumes a byte, so a hostile
    // template cannot make a record cost more work than its size.
    fields.retain(|f| f.len != 0);
    // IANA elements below 1024 (nearly all) are tracked in a bit set, so
    // marking repeats stays linear in the template's size.
    let mut seen = [0u64; 16];
    for i in 0..fields.len() {
        let (pen, id) = (fields[i].pen, fields[i].id);
        fields[i].repeat = if pen == 0 && id < 1024 {
            let (word, bit) = (usize::from(id / 64), id % 64);
            let repeat = seen[word] >> bit & 1 == 1;
            seen[word] |= 1 << bit;
            repeat
        } else {
            fields[..i].iter().any(|f| f.pen == pen && f.id == id)
        };
    }
    let min_len = fields.iter().map(|f| if f.len == VARLEN { 1 } else { usize::from(f.len) }).sum();
    Template { fields, options, min_len }
}

/// Reads one data record of `tpl` from the start of `b` into `f`. Returns
/// the bytes used, or `None` when a field runs past the end of the set.
fn read_record(tpl: &Template, b: &[u8], f: &mut Fields) -> Option<usize> {
    let mut off = 0usize;
    for spec in &tpl.fields {
        let len = if spec.len == VARLEN {
            // RFC 7011 §7: one length byte, or 255 and a two-byte length.
            let l = *b.get(off)?;
            off += 1;
            if l == 255 {
                let l = be16(b, off)?;
                off += 2;
                usize::from(l)
            } else {
                usize::from(l)
            }
        } else {
            usize::from(spec.len)
        };
        let value = b.get(off..off.checked_add(len)?)?;
        off += len;
        if !spec.repeat {
            f.set(spec.pen, spec.id, value);
        }
    }
    f.derive_sampling();
    f.fold_icmp();
    Some(off)
}

/// The elements of one record that map onto a [`FlowRecord`] (or onto the
/// exporter's state, for options records).
#[derive(Debug, Clone, Default)]
struct Fields {
    src4: Option<[u8; 4]>,
    dst4: Option<[u8; 4]>,
    src6: Option<[u8; 16]>,
    dst6: Option<[u8; 16]>,
    ip_version: Option<u8>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    proto: u8,
    tcp_flags: u8,
    rev_tcp_flags: u8,
    icmp_type_code: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    vlan: Option<u16>,
    dot1q_vlan: Option<u16>,
    /// Byte and packet counters, indexed by [`slot`] (see `octets()`).
    counters: [Option<u64>; COUNTER_IES.len()],
    first_uptime: Option<u32>,
    last_uptime: Option<u32>,
    /// Absolute start/end, with a rank (higher = finer resolution).
    start_abs: Option<(u8, TimestampNs)>,
    end_abs: Option<(u8, TimestampNs)>,
    observation: Option<(u8, TimestampNs)>,
    start_delta_us: Option<u64>,
    end_delta_us: Option<u64>,
    duration_ns: Option<i64>,
    sys_init_ms: Option<u64>,
    end_reason: Option<u8>,
    sampling: Option<u64>,
    /// samplerId (48) / selectorId (302): the record was sampled by this sampler.
    sampler_id: Option<u64>,
    sampling_packet_interval: Option<u64>,
    sampling_packet_space: Option<u64>,
    sampling_size: Option<u64>,
    sampling_population: Option<u64>,
}

impl Fields {
    /// Stores one element. Unknown elements (and every enterprise element
    /// other than RFC 5103 reverse ones) are ignored; values of an
    /// unexpected size are ignored too rather than misread.
    fn set(&mut self, pen: u32, id: u16, v: &[u8]) {
        if pen == REVERSE_PEN {
            match id {
                1 | 2 | 85 | 86 => {
                    if let Some(i) = slot(pen, id) {
                        self.counters[i] = uint(v);
                    }
                }
                6 => self.rev_tcp_flags = uint(v).map_or(0, |n| n as u8),
                _ => {}
            }
            return;
        }
        if pen != 0 {
            return;
        }
        match id {
            1 | 2 | 23 | 24 | 85 | 86 | 231 | 232 | 298 | 299 => {
                if let Some(i) = slot(0, id) {
                    self.counters[i] = uint(v);
                }
            }
            4 => self.proto = uint(v).map_or(0, |n| n as u8),
            // tcpControlBits is 2 bytes in IPFIX (flags plus NS/reserved):
            // the low byte holds the eight classic flags.
            6 => self.tcp_flags = uint(v).map_or(0, |n| n as u8),
            7 => self.src_port = uint(v).map(|n| n as u16),
            11 => self.dst_port = uint(v).map(|n| n as u16),
            8 => self.src4 = v.try_into().ok(),
            12 => self.dst4 = v.try_into().ok(),
            27 => self.src6 = v.try_into().ok(),
            28 => self.dst6 = v.try_into().ok(),
            60 => self.ip_version = uint(v).map(|n| n as u8),
            32 | 139 => self.icmp_type_code = uint(v).map(|n| n as u16),
            176 | 178 => self.icmp_type = uint(v).map(|n| n as u8),
            177 | 179 => self.icmp_code = uint(v).map(|n| n as u8),
            58 => self.vlan = uint(v).map(|n| n as u16),
            243 => self.dot1q_vlan = uint(v).map(|n| n as u16),
            22 => self.first_uptime = uint(v).map(|n| n as u32),
            21 => self.last_uptime = uint(v).map(|n| n as u32),
            150 => keep_finer(&mut self.start_abs, 1, secs(v)),
            151 => keep_finer(&mut self.end_abs, 1, secs(v)),
            152 => keep_finer(&mut self.start_abs, 2, millis(v)),
            153 => keep_finer(&mut self.end_abs, 2, millis(v)),
            154 => keep_finer(&mut self.start_abs, 3, ntp(v)),
            155 => keep_finer(&mut self.end_abs, 3, ntp(v)),
            156 => keep_finer(&mut self.start_abs, 4, ntp(v)),
            157 => keep_finer(&mut self.end_abs, 4, ntp(v)),
            322 => keep_finer(&mut self.observation, 1, secs(v)),
            323 => keep_finer(&mut self.observation, 2, millis(v)),
            324 => keep_finer(&mut self.observation, 3, ntp(v)),
            325 => keep_finer(&mut self.observation, 4, ntp(v)),
            158 => self.start_delta_us = uint(v),
            159 => self.end_delta_us = uint(v),
            160 => self.sys_init_ms = uint(v),
            161 => self.duration_ns = uint(v).and_then(|n| i64::try_from(n).ok()).map(|ms| ms.saturating_mul(1_000_000)),
            162 => self.duration_ns = uint(v).and_then(|n| i64::try_from(n).ok()).map(|us| us.saturating_mul(1_000)),
            136 => self.end_reason = uint(v).map(|n| n as u8),
            34 | 50 => self.sampling = uint(v),
            48 | 302 => self.sampler_id = uint(v),
            305 => self.sampling_packet_interval = uint(v),
            306 => self.sampling_packet_space = uint(v),
            309 => self.sampling_size = uint(v),
            310 => self.sampling_population = uint(v),
            _ => {}
        }
    }

    /// Count-based (IE 305/306) and random n-out-of-N (309/310) sampling as
    /// a "1 in N" interval, when the exporter did not give one directly.
    fn derive_sampling(&mut self) {
        if self.sampling.is_some() {
            return;
        }
        if let (Some(i), Some(s)) = (self.sampling_packet_interval, self.sampling_packet_space)
            && i > 0
        {
            self.sampling = Some(i.saturating_add(s) / i);
        } else if let (Some(n), Some(pop)) = (self.sampling_size, self.sampling_population)
            && n > 0
        {
            self.sampling = Some(pop / n);
        }
    }

    fn counter(&self, pen: u32, ids: &[u16]) -> u64 {
        ids.iter().find_map(|id| slot(pen, *id).and_then(|i| self.counters[i])).unwrap_or(0)
    }

    /// octetDeltaCount, else octetTotalCount, else postOctetDeltaCount,
    /// else initiatorOctets.
    fn octets(&self) -> u64 {
        self.counter(0, &[1, 85, 23, 231])
    }

    fn packets(&self) -> u64 {
        self.counter(0, &[2, 86, 24, 298])
    }

    /// RFC 5103 reverse octet counters, else responderOctets.
    fn rev_octets(&self) -> u64 {
        let r = self.counter(REVERSE_PEN, &[1, 85]);
        if r != 0 { r } else { self.counter(0, &[232]) }
    }

    fn rev_packets(&self) -> u64 {
        let r = self.counter(REVERSE_PEN, &[2, 86]);
        if r != 0 { r } else { self.counter(0, &[299]) }
    }

    /// The address pair: IPv4 or IPv6 as `ipVersion` says, else whichever
    /// family is present and not all zeros (templates carrying both
    /// families fill the unused one with zeros).
    fn pick(&self, v4: Option<[u8; 4]>, v6: Option<[u8; 16]>) -> Option<IpAddr> {
        let a4 = v4.map(|a| IpAddr::V4(Ipv4Addr::from(a)));
        let a6 = v6.map(|a| IpAddr::V6(Ipv6Addr::from(a)));
        match self.ip_version {
            Some(4) if a4.is_some() => a4,
            Some(6) if a6.is_some() => a6,
            _ => match (a4, a6) {
                (Some(a), Some(b)) => Some(if a.is_unspecified() && !b.is_unspecified() { b } else { a }),
                (a, b) => a.or(b),
            },
        }
    }

    fn src_ip(&self) -> Option<IpAddr> {
        self.pick(self.src4, self.src6)
    }

    /// The destination in the source's family when the record has it.
    fn dst_ip(&self) -> Option<IpAddr> {
        let src = self.src_ip()?;
        let both = match src {
            IpAddr::V4(_) => self.dst4.map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            IpAddr::V6(_) => self.dst6.map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        };
        both.or_else(|| self.pick(self.dst4, self.dst6))
    }

    /// Start and end, ns since the epoch (see the module docs for the order).
    fn times(&self, h: HeaderTime, info: ExporterInfo) -> (TimestampNs, TimestampNs) {
        let uptime_ns = |t: u32| -> Option<TimestampNs> {
            if let Some(up) = h.sys_uptime_ms {
                // v5/v9: ms of uptime before the export; the signed difference
                // survives the 49.7-day wrap of the 32-bit counter.
                let back = i64::from(up.wrapping_sub(t) as i32);
                Some(h.export_ns - back * 1_000_000)
            } else {
                let init = self.sys_init_ms.or(info.sys_init_ms)?;
                // A hostile systemInitTimeMilliseconds must not overflow.
                i64::try_from(init).ok()?.checked_add(i64::from(t))?.checked_mul(1_000_000)
            }
        };
        let delta = |us: u64| i64::try_from(us).ok().map(|us| h.export_ns - us.saturating_mul(1_000));
        let start = self.start_abs.map(|(_, t)| t).or_else(|| self.start_delta_us.and_then(delta)).or_else(|| self.first_uptime.and_then(uptime_ns));
        let end = self.end_abs.map(|(_, t)| t).or_else(|| self.end_delta_us.and_then(delta)).or_else(|| self.last_uptime.and_then(uptime_ns));
        let (start, end) = match (start, end) {
            (Some(s), Some(e)) => (s, e),
            (Some(s), None) => (s, self.duration_ns.map_or(s, |d| s.saturating_add(d))),
            (None, Some(e)) => (self.duration_ns.map_or(e, |d| e.saturating_sub(d)), e),
            (None, None) => {
                let t = self.observation.map_or(h.export_ns, |(_, t)| t);
                (t, t)
            }
        };
        (start, end.max(start))
    }
}

impl Fields {
    /// ICMP type/code from separate type and code elements, when no
    /// combined element was given.
    fn fold_icmp(&mut self) {
        if self.icmp_type_code.is_none()
            && let Some(t) = self.icmp_type
        {
            self.icmp_type_code = Some(u16::from(t) << 8 | u16::from(self.icmp_code.unwrap_or(0)));
        }
        if self.vlan.is_none() {
            self.vlan = self.dot1q_vlan;
        }
    }
}

/// The counter elements a record keeps, as (enterprise, id).
const COUNTER_IES: [(u32, u16); 14] = [
    (0, 1),
    (0, 2),
    (0, 85),
    (0, 86),
    (0, 23),
    (0, 24),
    (0, 231),
    (0, 232),
    (0, 298),
    (0, 299),
    (REVERSE_PEN, 1),
    (REVERSE_PEN, 2),
    (REVERSE_PEN, 85),
    (REVERSE_PEN, 86),
];

/// Slots of octetDeltaCount and packetDeltaCount in [`COUNTER_IES`].
const OCTETS_SLOT: usize = 0;
const PACKETS_SLOT: usize = 1;

/// Index of a counter element in [`Fields::counters`] (the order of
/// [`COUNTER_IES`]; a test checks they agree).
const fn slot(pen: u32, id: u16) -> Option<usize> {
    let base = match pen {
        0 => 0,
        REVERSE_PEN => 10,
        _ => return None,
    };
    let i = match (base, id) {
        (_, 1) => 0,
        (_, 2) => 1,
        (_, 85) => 2,
        (_, 86) => 3,
        (0, 23) => 4,
        (0, 24) => 5,
        (0, 231) => 6,
        (0, 232) => 7,
        (0, 298) => 8,
        (0, 299) => 9,
        _ => return None,
    };
    Some(base + i)
}

#[cfg(test)]
#[test]
fn counter_slots_match_the_table() {
    for (i, &(pen, id)) in COUNTER_IES.iter().enumerate() {
        assert_eq!(slot(pen, id), Some(i), "{pen}/{id}");
    }
    assert_eq!(slot(0, 3), None);
    assert_eq!(slot(REVERSE_PEN, 23), None);
    assert_eq!(slot(9, 1), None);
}

fn keep_finer(slot: &mut Option<(u8, TimestampNs)>, rank: u8, t: Option<TimestampNs>) {
    if let Some(t) = t
        && slot.is_none_or(|(r, _)| r < rank)
    {
        *slot = Some((rank, t));
    }
}

/// An unsigned integer of 1 to 8 bytes (RFC 7011 §6.2 reduced-size encoding).
fn uint(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    Some(v.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

fn secs(v: &[u8]) -> Option<TimestampNs> {
    uint(v).and_then(|s| i64::try_from(s).ok()).map(|s| s.saturating_mul(1_000_000_000))
}

fn millis(v: &[u8]) -> Option<TimestampNs> {
    uint(v).and_then(|s| i64::try_from(s).ok()).map(|ms| ms.saturating_mul(1_000_000))
}

/// dateTimeMicroseconds/Nanoseconds: 64-bit NTP timestamp (RFC 7011 §6.1.9).
fn ntp(v: &[u8]) -> Option<TimestampNs> {
    let v: [u8; 8] = v.try_into().ok()?;
    let secs = i64::from(u32::from_be_bytes([v[0], v[1], v[2], v[3]])) - NTP_UNIX_OFFSET;
    let frac = u64::from(u32::from_be_bytes([v[4], v[5], v[6], v[7]]));
    Some(secs * 1_000_000_000 + ((frac * 1_000_000_000) >> 32) as i64)
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
