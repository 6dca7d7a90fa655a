//! The kernel path as a capture source: Osprey's XDP program
//! ([`crate::kernel::KernelCapture`]) attached to the interface builds flows
//! and DNS records in the kernel; this source drains them into the pipeline
//! as ready records, and receives the packets the program hands to AF_XDP
//! sockets ([`super::afxdp`]) as raw packets for the shared decoder.
//!
//! - **Flows**: the kernel accounts every packet (including those it also
//!   hands to AF_XDP). Every `sweep_interval` (1 s) the flow-end ring and the
//!   flow map are drained with the offline table's expiry rules
//!   ([`KernelCapture::drain`]); at shutdown every open flow ends with reason
//!   `flush` ([`KernelCapture::flush`]), so stored flows equal offline ingest
//!   of the same packets. The decoder keeps only the DNS records of the
//!   AF_XDP packets ([`CaptureSource::accounts_flows`]).
//! - **DNS over UDP**: one kernel ring record per message, decoded by the
//!   offline parser. With AF_XDP DNS redirection on, messages longer than the
//!   kernel's copy and IP fragments are decoded from the AF_XDP packets
//!   instead, and their (cut-short) kernel records are dropped: the kernel
//!   marks a long message `DNS_COPY_TRUNCATED` and a first fragment
//!   `DNS_FIRST_FRAGMENT`, whatever its size.
//! - **DNS over TCP, fragments, the sample**: AF_XDP packets (redirection is
//!   opt-in: it takes the packets away from the host stack, see [`super::afxdp`]).
//!
//! Nothing waits on the pipeline: records and packets go to rings that drop
//! and count when full. Losses the kernel counts are reported as
//! [`SourceStats`]: AF_XDP socket drops (and redirected packets that never
//! reached a socket) as socket drops, full kernel rings as kernel ring drops.
//!
//! Shutdown ([`CaptureSource::finish`]) empties the XSKMAP (packets pass
//! again), detaches the program (closing its BPF link), then drains what the
//! sockets and rings still hold and flushes the flow map. Nothing is pinned:
//! dropping the source releases the programs, maps and sockets.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use osprey_ebpf::consts;

use super::LiveError;
use super::afxdp::{XskSocket, ZeroCopy};
use super::pcapng_segments::{SampleConfig, SampleWriter};
use super::source::{CaptureSource, Emitter, SourceConfig, SourceInfo, SourceState, SourceStats};
use crate::dns::DnsError;
use crate::flow::FlowConfig;
use crate::kernel::{AttachMode, AttachRequest, KernelCapture, KernelConfig, KernelCounters, XskConfig};
use crate::metrics::{AF_XDP_CLASSES, Counter, DNS_ERROR_KINDS, Metric, Registry, SKIP_REASONS};
use crate::packet::{self, Fragment, SkipReason};
use crate::pcap::LinkType;

const TCP: u8 = 6;
const UDP: u8 = 17;
/// The AF_XDP classes the decoder handles (all but the sample).
const DNS_CLASSES: u32 = (consts::XSK_CLASS_TCP_DNS | consts::XSK_CLASS_FRAGMENT | consts::XSK_CLASS_LARGE_DNS) as u32;
const SAMPLE: u32 = consts::XSK_CLASS_SAMPLE as u32;

/// Settings of the XDP source.
#[derive(Debug, Clone)]
pub struct XdpConfig {
    /// Native (driver) or generic attachment; `Auto` tries native first.
    pub attach: AttachRequest,
    /// Timeouts and flow map capacity (per IP version).
    pub flow: FlowConfig,
    /// UDP ports decoded as DNS in the kernel (at most 4).
    pub dns_ports: Vec<u16>,
    /// Kernel DNS ring size in bytes (a power of two, a multiple of the page size).
    pub dns_ring_bytes: u32,
    /// Redirect DNS over TCP, UDP fragments and long UDP DNS messages to
    /// AF_XDP sockets. They no longer reach the host stack: mirror ports only.
    pub af_xdp_dns: bool,
    /// TCP ports whose traffic is DNS (at most 4).
    pub tcp_dns_ports: Vec<u16>,
    /// Redirect 1 in this many packets (per CPU) to AF_XDP and write them as
    /// pcapng segments (0: no sample). Needs `sample`.
    pub sample_every: u32,
    /// Where sampled packets are written.
    pub sample: Option<SampleConfig>,
    /// UMEM frames per AF_XDP socket (a power of two).
    pub af_xdp_frames: u32,
    /// Zero-copy binding policy.
    pub zero_copy: ZeroCopy,
    /// How often ended flows are collected from the kernel.
    pub sweep_interval: Duration,
}

impl Default for XdpConfig {
    fn default() -> Self {
        let k = KernelConfig::default();
        XdpConfig {
            attach: AttachRequest::Auto,
            flow: k.flow,
            dns_ports: crate::ingest::IngestConfig::default().dns_ports,
            dns_ring_bytes: k.dns_ring_bytes,
            af_xdp_dns: false,
            tcp_dns_ports: vec![consts::DNS_PORT as u16],
            sample_every: 0,
            sample: None,
            af_xdp_frames: 4096,
            zero_copy: ZeroCopy::Auto,
            sweep_interval: Duration::from_secs(consts::FLOW_SWEEP_INTERVAL_SECS),
        }
    }
}

fn ports4(ports: &[u16], what: &str) -> Result<[u16; osprey_ebpf::DNS_MAX_PORTS], LiveError> {
    if ports.len() > osprey_ebpf::DNS_MAX_PORTS {
        return Err(LiveError::SourceUnavailable {
            source_kind: "xdp",
            reason: format!("{} {what} configured, the XDP program takes at most {}", ports.len(), osprey_ebpf::DNS_MAX_PORTS),
        });
    }
    let mut out = [0; osprey_ebpf::DNS_MAX_PORTS];
    out[..ports.len()].copy_from_slice(ports);
    Ok(out)
}

/// Metric handles of the source (registered by [`CaptureSource::register_metrics`]).
struct XdpMetrics {
    skipped: Vec<Counter>,
    refused: Counter,
    redirected: Vec<Counter>,
    sample: Option<(Counter, Counter)>,
    dns: Counter,
    dns_errors: Vec<Counter>,
}

/// Totals already pushed to the metrics (they are deltas of totals).
#[derive(Default)]
struct Pushed {
    skipped: [u64; SkipReason::COUNT],
    refused: u64,
    redirected: [u64; 4],
    sample: (u64, u64),
    dns: u64,
    dns_errors: [u64; DnsError::KINDS.len()],
}

/// The XDP kernel path on one interface.
pub struct XdpSource {
    iface: String,
    mode: AttachMode,
    // Sockets before the program: emptied from the XSKMAP, then closed.
    sockets: Vec<XskSocket>,
    kernel: KernelCapture,
    _promisc: Option<OwnedFd>,
    cfg: XdpConfig,
    sample: Option<SampleWriter>,
    last_sweep: Instant,
    last_sync: Instant,
    /// Kernel `CNT_PACKETS` already reported as received.
    reported_packets: u64,
    counters: KernelCounters,
    xsk: [u64; osprey_ebpf::XSK_CNT_MAX],
    /// Kernel DNS records dropped because AF_XDP decodes the whole message.
    deferred_dns: u64,
    dns_records: u64,
    dns_errors: [u64; DnsError::KINDS.len()],
    /// Redirected packets that reached no socket (known at shutdown).
    not_delivered: u64,
    /// AF_XDP packets that came without the program's metadata word
    /// (classified again in userspace).
    without_meta: u64,
    metrics: Option<XdpMetrics>,
    pushed: Pushed,
    finished: bool,
}

impl std::fmt::Debug for XdpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpSource").field("iface", &self.iface).field("mode", &self.mode).field("sockets", &self.sockets).finish()
    }
}

/// Puts `iface` in promiscuous mode for as long as the returned socket lives
/// (a packet socket's membership, which the kernel undoes when it closes, so
/// a killed daemon leaves no trace). XDP sees frames for other MACs only then
/// on a real NIC (a mirror port).
fn promiscuous(iface: &str) -> Result<OwnedFd, LiveError> {
    let name = CString::new(iface).map_err(|_| LiveError::Interface { iface: iface.into(), source: io::Error::from(io::ErrorKind::InvalidInput) })?;
    // SAFETY: plain syscalls; the fd is owned right away.
    unsafe {
        let ifindex = libc::if_nametoindex(name.as_ptr());
        if ifindex == 0 {
            return Err(LiveError::Interface { iface: iface.into(), source: io::Error::last_os_error() });
        }
        // Protocol 0: the socket receives nothing, it only holds the membership.
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(LiveError::Socket { iface: iface.into(), call: "socket(AF_PACKET)", source: io::Error::last_os_error() });
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mreq = libc::packet_mreq { mr_ifindex: ifindex as i32, mr_type: libc::PACKET_MR_PROMISC as u16, mr_alen: 0, mr_address: [0; 8] };
        let rc = libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        );
        if rc != 0 {
            return Err(LiveError::Socket { iface: iface.into(), call: "PACKET_ADD_MEMBERSHIP", source: io::Error::last_os_error() });
        }
        Ok(fd)
    }
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// The classes of an AF_XDP packet that arrived without the program's
/// metadata word (a driver that does not support XDP metadata): the same
/// rules as `xsk_classify` in `xsk.bpf.h`; a packet in none of the DNS
/// classes can only have been sampled.
fn classify(data: &[u8], dns_ports: &[u16], tcp_ports: &[u16], enabled: u32) -> u32 {
    let Ok(m) = packet::decode_frame(LinkType::Ethernet, data, data.len() as u32) else { return SAMPLE };
    let c = if m.fragment != Fragment::None {
        if m.proto == UDP { consts::XSK_CLASS_FRAGMENT as u32 } else { 0 }
    } else if m.proto == TCP && (tcp_ports.contains(&m.src_port) || tcp_ports.contains(&m.dst_port)) {
        consts::XSK_CLASS_TCP_DNS as u32
    } else if m.proto == UDP
        && (dns_ports.contains(&m.src_port) || dns_ports.contains(&m.dst_port))
        && m.payload.len() > consts::DNS_MAX_COPY as usize
    {
        consts::XSK_CLASS_LARGE_DNS as u32
    } else {
        0
    };
    if c & enabled != 0 { c & enabled } else { SAMPLE }
}

impl XdpSource {
    /// Loads the program, opens the AF_XDP sockets (if redirection is on),
    /// and attaches to `cfg.iface`.
    pub fn open(cfg: &SourceConfig) -> Result<XdpSource, LiveError> {
        let x = cfg.xdp.clone();
        let iface = cfg.iface.clone();
        let kerr = |source| LiveError::Kernel { iface: iface.clone(), source: Box::new(source) };
        if x.sample_every > 0 && x.sample.is_none() {
            return Err(LiveError::SourceUnavailable { source_kind: "xdp", reason: "a packet sample needs a data directory to write to".into() });
        }
        let classes = if x.af_xdp_dns { DNS_CLASSES } else { 0 };
        let xsk = XskConfig {
            classes,
            sample_every: x.sample_every,
            tcp_dns_ports: ports4(&x.tcp_dns_ports, "TCP DNS ports")?,
            udp_dns_ports: ports4(&x.dns_ports, "DNS ports")?,
        };
        let kc =
            KernelConfig { flow: x.flow.clone(), dns_ports: x.dns_ports.clone(), dns_ring_bytes: x.dns_ring_bytes, xsk, ..KernelConfig::default() };
        let mut kernel = KernelCapture::load(kc).map_err(kerr)?;
        let mut sockets = Vec::new();
        if classes != 0 || x.sample_every > 0 {
            for q in super::afxdp::rx_queues(&iface) {
                let s = XskSocket::open(&iface, q, x.af_xdp_frames, x.zero_copy)?;
                kernel.set_xsk(q, s.fd()).map_err(kerr)?;
                sockets.push(s);
            }
        }
        let promisc = if cfg.promiscuous { Some(promiscuous(&iface)?) } else { None };
        let mode = kernel.attach(&iface, x.attach).map_err(kerr)?;
        let sample = match (&x.sample, x.sample_every) {
            (Some(sc), n) if n > 0 => Some(SampleWriter::start(sc.clone()).map_err(|source| LiveError::Socket {
                iface: iface.clone(),
                call: "starting the pcapng sample writer",
                source,
            })?),
            _ => None,
        };
        let zc = sockets.iter().any(XskSocket::zero_copy);
        tracing::info!(
            iface = %iface,
            mode = ?mode,
            af_xdp_sockets = sockets.len(),
            af_xdp = if sockets.is_empty() { "off" } else if zc { "zero-copy" } else { "copy" },
            "XDP source ready"
        );
        let counters = kernel.counters().map_err(kerr)?;
        Ok(XdpSource {
            iface,
            mode,
            sockets,
            kernel,
            _promisc: promisc,
            cfg: x,
            sample,
            last_sweep: Instant::now(),
            last_sync: Instant::now(),
            reported_packets: counters.packets(),
            counters,
            xsk: [0; osprey_ebpf::XSK_CNT_MAX],
            deferred_dns: 0,
            dns_records: 0,
            dns_errors: [0; DnsError::KINDS.len()],
            not_delivered: 0,
            without_meta: 0,
            metrics: None,
            pushed: Pushed::default(),
            finished: false,
        })
    }

    /// How the program is attached.
    pub fn attach_mode(&self) -> AttachMode {
        self.mode
    }

    /// The AF_XDP sockets (empty when redirection is off).
    pub fn sockets(&self) -> &[XskSocket] {
        &self.sockets
    }

    /// Kernel DNS records dropped because the AF_XDP path decodes those
    /// messages whole (see the module docs).
    pub fn deferred_dns(&self) -> u64 {
        self.deferred_dns
    }

    fn kerr(&self, source: crate::kernel::KernelError) -> LiveError {
        LiveError::Kernel { iface: self.iface.clone(), source: Box::new(source) }
    }

    /// Moves what the sockets received to the pipeline (DNS classes) and the sample writer.
    fn drain_sockets(&mut self, out: &mut Emitter) {
        let enabled = if self.cfg.af_xdp_dns { DNS_CLASSES } else { 0 };
        let Self { sockets, sample, cfg, without_meta, .. } = self;
        for s in sockets.iter_mut() {
            let mut total = 0;
            loop {
                let ts = wall_ns();
                let n = s.receive(256, |data, meta| {
                    let classes = meta.map_or_else(
                        || {
                            *without_meta += 1;
                            classify(data, &cfg.dns_ports, &cfg.tcp_dns_ports, enabled)
                        },
                        |w| w & 0xff,
                    );
                    if classes & DNS_CLASSES != 0 {
                        out.extra_packet(ts, data.len() as u32, LinkType::Ethernet, data);
                    }
                    if classes & SAMPLE != 0
                        && let Some(w) = sample.as_ref()
                    {
                        w.push(ts, data);
                    }
                });
                total += n;
                if n == 0 || total >= 16_384 {
                    break;
                }
            }
        }
    }

    fn drain_dns(&mut self, out: &mut Emitter) {
        loop {
            let events = self.kernel.dns_events(1024);
            if events.is_empty() {
                return;
            }
            for ev in &events {
                // The AF_XDP path decodes these messages whole: long ones, and
                // fragmented ones (reassembled) whatever the first fragment's size.
                if self.cfg.af_xdp_dns && ev.status & (consts::DNS_COPY_TRUNCATED | consts::DNS_FIRST_FRAGMENT) as u8 != 0 {
                    self.deferred_dns += 1;
                    continue;
                }
                match self.kernel.dns_record(ev) {
                    Ok(rec) => {
                        self.dns_records += 1;
                        out.dns(rec);
                    }
                    Err(e) => self.dns_errors[e.index()] += 1,
                }
            }
        }
    }

    fn sync(&mut self, out: &mut Emitter) -> Result<(), LiveError> {
        self.counters = self.kernel.counters().map_err(|e| self.kerr(e))?;
        self.xsk = self.kernel.xsk_counters().map_err(|e| self.kerr(e))?;
        let packets = self.counters.packets();
        out.count_received(packets.saturating_sub(self.reported_packets), 0);
        self.reported_packets = packets;
        let Some(m) = &self.metrics else { return Ok(()) };
        let p = &mut self.pushed;
        let skipped = self.counters.skipped_all();
        for (i, c) in m.skipped.iter().enumerate() {
            c.add(skipped[i].saturating_sub(p.skipped[i]));
        }
        p.skipped = skipped;
        let refused = self.counters.flow_table_full();
        m.refused.add(refused.saturating_sub(p.refused));
        p.refused = refused;
        let classes = [consts::XSK_CNT_TCP_DNS, consts::XSK_CNT_FRAGMENT, consts::XSK_CNT_LARGE_DNS, consts::XSK_CNT_SAMPLE];
        for (i, c) in m.redirected.iter().enumerate() {
            let v = self.xsk[classes[i] as usize];
            c.add(v.saturating_sub(p.redirected[i]));
            p.redirected[i] = v;
        }
        if let (Some((written, dropped)), Some(w)) = (&m.sample, &self.sample) {
            let s = w.stats();
            let (wr, dr) = (s.written.load(std::sync::atomic::Ordering::Relaxed), s.dropped.load(std::sync::atomic::Ordering::Relaxed));
            written.add(wr.saturating_sub(p.sample.0));
            dropped.add(dr.saturating_sub(p.sample.1));
            p.sample = (wr, dr);
        }
        m.dns.add(self.dns_records - p.dns);
        p.dns = self.dns_records;
        for (i, c) in m.dns_errors.iter().enumerate() {
            c.add(self.dns_errors[i] - p.dns_errors[i]);
        }
        p.dns_errors = self.dns_errors;
        Ok(())
    }
}

impl CaptureSource for XdpSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            iface: self.iface.clone(),
            source: "xdp",
            mode: match self.mode {
                AttachMode::Native => "xdp_native",
                AttachMode::Generic => "xdp_generic",
            },
        }
    }

    fn poll(&mut self, out: &mut Emitter, timeout: Duration) -> Result<SourceState, LiveError> {
        let wait = timeout.min(self.cfg.sweep_interval);
        let mut fds: Vec<libc::pollfd> = std::iter::once(self.kernel.dns_ring_fd())
            .chain(self.sockets.iter().map(XskSocket::fd))
            .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is a valid array of pollfds of the length passed.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(LiveError::Socket { iface: self.iface.clone(), call: "poll", source: e });
            }
        }
        self.drain_sockets(out);
        self.drain_dns(out);
        if self.last_sweep.elapsed() >= self.cfg.sweep_interval {
            self.last_sweep = Instant::now();
            for rec in self.kernel.drain().map_err(|e| self.kerr(e))? {
                out.flow(rec);
            }
        }
        if self.last_sync.elapsed() >= Duration::from_millis(200) {
            self.last_sync = Instant::now();
            self.sync(out)?;
        }
        Ok(SourceState::Running)
    }

    fn stats(&mut self) -> SourceStats {
        let xsk_drops: u64 = self.sockets.iter().map(|s| s.drops().total()).sum();
        SourceStats {
            socket_drops: xsk_drops + self.not_delivered,
            interface_drops: 0,
            kernel_dns_ring_drops: self.counters.get(consts::CNT_DNS_RING_FULL),
            kernel_flow_ring_drops: self.counters.get(consts::CNT_FLOW_END_RING_FULL),
        }
    }

    fn register_metrics(&mut self, reg: &Registry) -> Result<(), LiveError> {
        let iface = self.iface.as_str();
        if let Some(s) = self.sockets.first() {
            let mode = if s.zero_copy() { "zerocopy" } else { "copy" };
            reg.gauge(Metric::AfXdpInfo, &[("iface", iface), ("mode", mode)])?.set(1.0);
        }
        let sample = match &self.sample {
            Some(_) => Some((
                reg.counter(Metric::SampleWrittenPackets, &[("iface", iface)])?,
                reg.counter(Metric::SampleDroppedPackets, &[("iface", iface)])?,
            )),
            None => None,
        };
        self.metrics = Some(XdpMetrics {
            skipped: SKIP_REASONS
                .iter()
                .map(|r| reg.counter(Metric::KernelSkippedPackets, &[("iface", iface), ("reason", r)]))
                .collect::<Result<_, _>>()?,
            refused: reg.counter(Metric::KernelFlowTableRefusedPackets, &[("iface", iface)])?,
            redirected: AF_XDP_CLASSES
                .iter()
                .map(|c| reg.counter(Metric::AfXdpRedirectedPackets, &[("iface", iface), ("class", c)]))
                .collect::<Result<_, _>>()?,
            sample,
            dns: reg.counter(Metric::DnsDecodedMessages, &[])?,
            dns_errors: DNS_ERROR_KINDS.iter().map(|r| reg.counter(Metric::DnsUndecodableMessages, &[("reason", r)])).collect::<Result<_, _>>()?,
        });
        Ok(())
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<(), LiveError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        // No more redirections, no more packets: then collect what is left.
        for s in &self.sockets {
            self.kernel.clear_xsk(s.queue()).map_err(|e| self.kerr(e))?;
        }
        self.kernel.detach().map_err(|e| self.kerr(e))?;
        self.drain_sockets(out);
        self.drain_dns(out);
        for rec in self.kernel.flush().map_err(|e| self.kerr(e))? {
            out.flow(rec);
        }
        self.sync(out)?;
        // Everything redirected either reached a socket or was dropped there;
        // what is left reached none (e.g. the queue's socket was being replaced).
        let redirected = self.xsk[consts::XSK_CNT_REDIRECTED as usize];
        let received: u64 = self.sockets.iter().map(XskSocket::received).sum();
        let dropped: u64 = self.sockets.iter().map(|s| s.drops().total()).sum();
        self.not_delivered = redirected.saturating_sub(received + dropped);
        if !self.sockets.is_empty() {
            tracing::info!(
                received,
                dropped,
                not_delivered = self.not_delivered,
                without_metadata = self.without_meta,
                deferred_kernel_dns = self.deferred_dns,
                "AF_XDP totals"
            );
        }
        if let Some(w) = self.sample.take() {
            let stats_written = w.stats().written.load(std::sync::atomic::Ordering::Relaxed);
            let paths = w.finish();
            tracing::info!(packets = stats_written, segments = paths.len(), "pcapng sample published");
        }
        Ok(())
    }

    fn accounts_flows(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{Ipv4, PacketBuilder, Tcp, Udp, ip_proto};

    const ALL: u32 = DNS_CLASSES;

    fn frame(f: impl FnOnce(PacketBuilder<'_>) -> PacketBuilder<'_>) -> Vec<u8> {
        let mut b = Vec::new();
        f(PacketBuilder::new(&mut b).ethernet([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])).finish();
        b
    }

    #[test]
    fn the_fallback_classification_follows_the_kernel_rules() {
        let (c, s) = ("198.18.0.1".parse().expect("ip"), "198.19.0.1".parse().expect("ip"));
        let tcp = frame(|b| b.ip(c, s).tcp(Tcp::new(40000, 53, 2)));
        let big = frame(|b| b.ip(s, c).udp(Udp::new(53, 40000)).payload(&[0; 600]));
        let small = frame(|b| b.ip(s, c).udp(Udp::new(53, 40000)).payload(&[0; 100]));
        let frag = frame(|b| {
            b.ipv4(Ipv4 {
                more_fragments: false,
                dont_fragment: false,
                fragment_offset: 100,
                ..Ipv4::new("198.18.0.1".parse().expect("ip"), "198.19.0.1".parse().expect("ip"))
            })
            .ip_protocol(ip_proto::UDP)
            .payload(&[0; 40])
        });
        let dns = [53, 5353];
        assert_eq!(classify(&tcp, &dns, &[53], ALL), consts::XSK_CLASS_TCP_DNS as u32);
        assert_eq!(classify(&big, &dns, &[53], ALL), consts::XSK_CLASS_LARGE_DNS as u32);
        assert_eq!(classify(&frag, &dns, &[53], ALL), consts::XSK_CLASS_FRAGMENT as u32);
        assert_eq!(classify(&small, &dns, &[53], ALL), SAMPLE, "a small UDP DNS message can only have been sampled");
        assert_eq!(classify(&tcp, &dns, &[53], 0), SAMPLE, "DNS classes off: sampled");
        assert_eq!(classify(&[0; 5], &dns, &[53], ALL), SAMPLE);
    }
}
