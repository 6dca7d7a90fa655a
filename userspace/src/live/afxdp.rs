//! AF_XDP sockets: the few packets the XDP program hands to userspace
//! (`ebpf/src/xsk.bpf.h`) instead of summarising them in the kernel.
//!
//! # Why these packets, and the price: they do not reach the host
//!
//! The kernel path turns most traffic into flow and DNS records in the
//! kernel. Three kinds of DNS traffic it cannot finish there go to an AF_XDP
//! socket and through the same [`crate::decode::PacketDecoder`] as offline
//! ingest: DNS over TCP (stream reassembly), UDP DNS in IP fragments
//! (fragment reassembly; every UDP fragment is taken, since non-first
//! fragments carry no ports) and UDP DNS messages longer than the kernel's
//! 512-byte copy. A fourth, optional class is a 1-in-N sample of all packets,
//! written as pcapng segments ([`super::pcapng_segments`]).
//!
//! XDP cannot clone: a packet redirected to a socket is consumed there and
//! never reaches the host's network stack. On a mirror/SPAN port or a TAP
//! that is harmless (the traffic is not the host's own); on an interface the
//! host uses it would break the host's own DNS over TCP. So redirection is
//! opt-in (`[capture] af_xdp_dns`, `af_xdp_sample_every_packets`, both off by
//! default) and the configuration documentation says to enable it only on a
//! monitoring interface; with it off the XDP program passes every packet.
//!
//! # Sockets
//!
//! One socket per receive queue of the interface (the XDP program redirects
//! to the socket in the XSKMAP slot of the queue the packet arrived on; a
//! queue without a socket keeps passing its packets). Each socket has its own
//! UMEM ([`xdpilone`]): `frames` frames of [`FRAME_BYTES`], all of them on
//! the fill ring at start, each returned to it as soon as its packet is
//! copied out. Binding asks for zero-copy first and falls back to copy mode
//! (veth, generic XDP, drivers without AF_XDP support); [`XskSocket::zero_copy`]
//! says which one is active.
//!
//! Nothing here waits for room downstream: the caller copies each packet into
//! the pipeline's packet ring (which drops and counts when full), and when
//! userspace falls behind the kernel drops on the socket's own rings and
//! counts it ([`XskSocket::drops`]).

use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::ptr::NonNull;

use memmap2::MmapMut;
use xdpilone::{IfInfo, RingRx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::LiveError;

/// Bytes per UMEM frame (a page holds two; the MTU of a mirror port fits).
pub const FRAME_BYTES: u32 = 2048;

/// How a socket was bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Zero-copy if the driver supports it, else copy mode.
    #[default]
    Auto,
    /// Copy mode only.
    Off,
}

/// An AF_XDP socket receiving one queue of one interface.
pub struct XskSocket {
    queue: u32,
    zero_copy: bool,
    // Field order is drop order: rings and socket before the UMEM, the UMEM
    // before the memory it describes.
    rx: RingRx,
    user: User,
    device: xdpilone::DeviceQueue,
    _umem: Umem,
    area: MmapMut,
    /// Frames waiting to go back on the fill ring.
    recycle: Vec<u64>,
    received: u64,
}

// SAFETY: the socket owns its rings, its UMEM and the memory behind them;
// xdpilone's types hold raw pointers into those mappings only, which stay
// valid wherever the owner moves. One thread uses the socket at a time
// (`&mut self` on every operation).
unsafe impl Send for XskSocket {}

impl std::fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskSocket").field("queue", &self.queue).field("zero_copy", &self.zero_copy).finish()
    }
}

/// Drop counters of a socket (the kernel's `XDP_STATISTICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskDrops {
    /// Packets dropped because no fill-ring frame was free (`rx_dropped`,
    /// which also counts frames too large for a UMEM frame).
    pub rx_dropped: u64,
    /// Packets dropped because the receive ring was full.
    pub rx_ring_full: u64,
}

impl XskDrops {
    /// All packets the kernel redirected to the socket but could not deliver.
    pub fn total(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full
    }
}

fn errno(iface: &str, call: &'static str, e: xdpilone::Errno) -> LiveError {
    LiveError::Socket { iface: iface.to_string(), call, source: io::Error::from_raw_os_error(e.get_raw()) }
}

/// The receive queues of `iface` (`/sys/class/net/IF/queues/rx-N`); at least queue 0.
pub fn rx_queues(iface: &str) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str()?.strip_prefix("rx-")?.parse().ok()).collect())
        .unwrap_or_default();
    out.sort_unstable();
    if out.is_empty() {
        out.push(0);
    }
    out
}

impl XskSocket {
    /// Opens and binds a socket on `iface` queue `queue` with `frames` UMEM
    /// frames (a power of two) and a receive ring of `frames / 2` descriptors.
    /// The fill ring is full when this returns; nothing arrives until the
    /// socket is put in the XDP program's XSKMAP.
    pub fn open(iface: &str, queue: u32, frames: u32, zero_copy: ZeroCopy) -> Result<XskSocket, LiveError> {
        if !frames.is_power_of_two() || frames < 64 {
            return Err(LiveError::SourceUnavailable {
                source_kind: "xdp",
                reason: format!("af_xdp_frames must be a power of two >= 64, not {frames}"),
            });
        }
        if zero_copy == ZeroCopy::Auto {
            match Self::open_mode(iface, queue, frames, true) {
                Ok(s) => return Ok(s),
                Err(e) => tracing::info!(iface, queue, "AF_XDP zero-copy bind failed ({e}); using copy mode"),
            }
        }
        Self::open_mode(iface, queue, frames, false)
    }

    fn open_mode(iface: &str, queue: u32, frames: u32, zero_copy: bool) -> Result<XskSocket, LiveError> {
        let len = frames as usize * FRAME_BYTES as usize;
        let mut area = MmapMut::map_anon(len).map_err(|source| LiveError::Socket { iface: iface.into(), call: "mmap (UMEM)", source })?;
        let ptr = NonNull::new(std::ptr::slice_from_raw_parts_mut(area.as_mut_ptr(), len)).ok_or_else(|| LiveError::Socket {
            iface: iface.into(),
            call: "mmap (UMEM)",
            source: io::Error::other("null mapping"),
        })?;
        let cfg = UmemConfig { fill_size: frames, complete_size: 64, frame_size: FRAME_BYTES, headroom: 0, flags: 0 };
        // SAFETY: `area` is a fresh page-aligned anonymous mapping of `len`
        // bytes, kept alive (in the returned struct, dropped after the UMEM).
        let umem = unsafe { Umem::new(cfg, ptr) }.map_err(|e| errno(iface, "UMEM registration", e))?;
        let name = CString::new(iface).map_err(|_| LiveError::Interface {
            iface: iface.into(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "interface name contains NUL"),
        })?;
        let mut info = IfInfo::invalid();
        info.from_name(&name).map_err(|e| LiveError::Interface { iface: iface.into(), source: io::Error::from_raw_os_error(e.get_raw()) })?;
        info.set_queue(queue);
        let sock = Socket::with_shared(&info, &umem).map_err(|e| errno(iface, "AF_XDP socket", e))?;
        let device = umem.fq_cq(&sock).map_err(|e| errno(iface, "AF_XDP fill/completion rings", e))?;
        let mode = if zero_copy { SocketConfig::XDP_BIND_ZEROCOPY } else { SocketConfig::XDP_BIND_COPY };
        let scfg = SocketConfig { rx_size: NonZeroU32::new(frames / 2), tx_size: None, bind_flags: mode | SocketConfig::XDP_BIND_NEED_WAKEUP };
        let user = umem.rx_tx(&sock, &scfg).map_err(|e| errno(iface, "AF_XDP rx ring", e))?;
        let rx = user.map_rx().map_err(|e| errno(iface, "AF_XDP rx ring mmap", e))?;
        umem.bind(&user).map_err(|e| errno(iface, if zero_copy { "AF_XDP bind (zero-copy)" } else { "AF_XDP bind (copy)" }, e))?;
        let mut s = XskSocket {
            queue,
            zero_copy,
            rx,
            user,
            device,
            _umem: umem,
            area,
            recycle: (0..u64::from(frames)).map(|i| i * u64::from(FRAME_BYTES)).collect(),
            received: 0,
        };
        s.refill();
        Ok(s)
    }

    /// The queue it receives.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether it is bound in zero-copy mode (else copy mode).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The socket's fd (for the XSKMAP and for `poll`).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.rx.as_raw_fd()
    }

    /// Packets received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The kernel's drop counters for this socket.
    pub fn drops(&self) -> XskDrops {
        match self.user.statistics_v2() {
            Ok(s) => XskDrops { rx_dropped: s.rx_dropped, rx_ring_full: s.rx_ring_full },
            Err(_) => XskDrops::default(),
        }
    }

    fn refill(&mut self) {
        if self.recycle.is_empty() {
            return;
        }
        let n = {
            let mut fill = self.device.fill(self.recycle.len() as u32);
            let n = fill.insert(self.recycle.iter().copied()) as usize;
            fill.commit();
            n
        };
        self.recycle.drain(..n);
        if self.device.needs_wakeup() {
            self.device.wake();
        }
    }

    /// Takes up to `max` received packets: `f(frame, metadata word)` for each
    /// (the 4-byte XDP metadata in front of the frame, when the program wrote
    /// one; see [`osprey_ebpf::consts::XSK_META_MAGIC`]). Frames go back to
    /// the fill ring right after. Returns how many were taken.
    pub fn receive(&mut self, max: u32, mut f: impl FnMut(&[u8], Option<u32>)) -> u32 {
        let frame = u64::from(FRAME_BYTES);
        let mut n = 0;
        {
            let mut rx = self.rx.receive(max);
            while let Some(desc) = rx.read() {
                n += 1;
                let (addr, len) = (desc.addr as usize, desc.len as usize);
                let base = desc.addr - desc.addr % frame;
                if let Some(data) = self.area.get(addr..addr + len) {
                    // The metadata word sits right before the frame, inside its chunk.
                    let meta = (desc.addr - base >= 4)
                        .then(|| u32::from_ne_bytes([self.area[addr - 4], self.area[addr - 3], self.area[addr - 2], self.area[addr - 1]]))
                        .filter(|w| w & 0xffff_ff00 == osprey_ebpf::consts::XSK_META_MAGIC as u32);
                    f(data, meta);
                    // Clear it: a later packet in this frame without metadata
                    // must not inherit this one's classes.
                    if desc.addr - base >= 4 {
                        self.area[addr - 4..addr].fill(0);
                    }
                }
                self.recycle.push(base);
            }
            rx.release();
        }
        self.received += u64::from(n);
        self.refill();
        n
    }
}
