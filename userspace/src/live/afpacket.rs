//! The `AF_PACKET` capture source: a plain `socket(AF_PACKET, SOCK_RAW,
//! ETH_P_ALL)` bound to one interface, read with `recvmmsg` in batches.
//!
//! This is the path that works on any Linux interface without BPF (the
//! libpcap/tcpdump way, minus the mmap ring). Per packet the kernel gives us:
//! - the frame bytes (up to the snaplen; `MSG_TRUNC` reports the real length);
//! - an `SCM_TIMESTAMPNS` control message: the kernel's receive time;
//! - a `PACKET_AUXDATA` control message: the original length and, when the
//!   NIC stripped an 802.1Q tag (VLAN offload), the tag, which we put back in
//!   the frame so the VLAN id stays part of the flow key as it is offline.
//!
//! Losses we cannot see in the pipeline are read from the kernel: socket
//! queue overflows (`PACKET_STATISTICS`, which resets on read, so they are
//! accumulated) and the interface's `rx_dropped` counter.
//!
//! Promiscuous mode is requested through `PACKET_ADD_MEMBERSHIP`, which the
//! kernel undoes when the socket closes, so a killed daemon leaves no trace.

use std::ffi::CString;
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::LiveError;
use super::source::{CaptureSource, Emitter, SourceConfig, SourceInfo, SourceState, SourceStats};
use crate::pcap::LinkType;

/// Messages read per `recvmmsg` call.
const BATCH: usize = 64;
/// `recvmmsg` calls per poll before returning to the capture loop.
const MAX_BATCHES_PER_POLL: usize = 64;
/// Room for the two control messages we ask for (timestamp, auxdata), aligned.
const CTRL_WORDS: usize = 16;

const ETH_P_ALL: u16 = 0x0003;
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const SO_TIMESTAMPNS: libc::c_int = 35;
const SO_RCVBUFFORCE: libc::c_int = 33;

#[repr(C)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// An `AF_PACKET` socket capturing one interface.
#[derive(Debug)]
pub struct AfPacketSource {
    fd: OwnedFd,
    iface: String,
    link: LinkType,
    bufs: Vec<Vec<u8>>,
    ctrl: Vec<[u64; CTRL_WORDS]>,
    /// Scratch frame for re-inserting a stripped VLAN tag.
    frame: Vec<u8>,
    socket_drops: u64,
    rx_dropped_base: Option<u64>,
}

fn sys_err(iface: &str, call: &'static str) -> LiveError {
    LiveError::Socket { iface: iface.to_string(), call, source: io::Error::last_os_error() }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), size_of::<T>() as libc::socklen_t)
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn read_sys_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The link type of the frames a `SOCK_RAW` packet socket returns for an
/// interface of ARPHRD type `arphrd` (`/sys/class/net/IF/type`).
fn link_type_of(arphrd: u64) -> Option<LinkType> {
    match arphrd {
        // Ethernet, and loopback (which carries an all-zero Ethernet header).
        1 | 772 => Some(LinkType::Ethernet),
        // No link header: tun, WireGuard, IP-in-IP/SIT/GRE tunnels.
        65534 | 768 | 769 | 776 | 778 | 823 => Some(LinkType::Raw),
        _ => None,
    }
}

impl AfPacketSource {
    /// Opens a socket on `cfg.iface` (needs `CAP_NET_RAW`).
    pub fn open(cfg: &SourceConfig) -> Result<Self, LiveError> {
        let iface = cfg.iface.as_str();
        let name = CString::new(iface).map_err(|_| LiveError::Interface {
            iface: iface.to_string(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "interface name contains NUL"),
        })?;
        // SAFETY: `name` is a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(LiveError::Interface { iface: iface.to_string(), source: io::Error::last_os_error() });
        }
        let arphrd = read_sys_u64(&format!("/sys/class/net/{iface}/type")).unwrap_or(1);
        let link = link_type_of(arphrd).ok_or_else(|| LiveError::Interface {
            iface: iface.to_string(),
            source: io::Error::new(io::ErrorKind::Unsupported, format!("link type (ARPHRD {arphrd}) is not decoded")),
        })?;
        // Protocol 0: the socket receives nothing until bound with ETH_P_ALL,
        // so no packet of another interface sneaks in before the bind.
        // SAFETY: plain syscall.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(sys_err(iface, "socket(AF_PACKET)"));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        setsockopt(&fd, SOL_PACKET, PACKET_AUXDATA, &one).map_err(|source| LiveError::Socket {
            iface: iface.to_string(),
            call: "setsockopt(PACKET_AUXDATA)",
            source,
        })?;
        setsockopt(&fd, libc::SOL_SOCKET, SO_TIMESTAMPNS, &one).map_err(|source| LiveError::Socket {
            iface: iface.to_string(),
            call: "setsockopt(SO_TIMESTAMPNS)",
            source,
        })?;
        let rcvbuf = libc::c_int::try_from(cfg.socket_buffer_bytes).unwrap_or(libc::c_int::MAX);
        if setsockopt(&fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf).is_err() {
            // Without CAP_NET_ADMIN the buffer is capped by net.core.rmem_max.
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf);
        }
        if cfg.ignore_outgoing {
            setsockopt(&fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one).map_err(|source| LiveError::Socket {
                iface: iface.to_string(),
                call: "setsockopt(PACKET_IGNORE_OUTGOING)",
                source,
            })?;
        }
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(sys_err(iface, "bind"));
        }
        if cfg.promiscuous {
            let mreq = PacketMreq { mr_ifindex: ifindex as libc::c_int, mr_type: PACKET_MR_PROMISC, mr_alen: 0, mr_address: [0; 8] };
            setsockopt(&fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq).map_err(|source| LiveError::Socket {
                iface: iface.to_string(),
                call: "setsockopt(PACKET_ADD_MEMBERSHIP)",
                source,
            })?;
        }
        let snap = (cfg.snaplen_bytes as usize).clamp(64, 256 * 1024);
        let mut src = AfPacketSource {
            fd,
            iface: iface.to_string(),
            link,
            bufs: (0..BATCH).map(|_| vec![0u8; snap]).collect(),
            ctrl: vec![[0u64; CTRL_WORDS]; BATCH],
            frame: Vec::with_capacity(snap + 4),
            socket_drops: 0,
            rx_dropped_base: read_sys_u64(&format!("/sys/class/net/{iface}/statistics/rx_dropped")),
        };
        // Reset the kernel's counters so they start with this socket.
        let _ = src.read_kernel_stats();
        src.socket_drops = 0;
        Ok(src)
    }

    fn read_kernel_stats(&mut self) -> io::Result<()> {
        let mut st = TpacketStats::default();
        let mut len = size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: `st` is a writable TpacketStats of `len` bytes.
        let rc = unsafe {
            libc::getsockopt(self.fd.as_raw_fd(), SOL_PACKET, PACKET_STATISTICS, (&mut st as *mut TpacketStats).cast(), &mut len)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        self.socket_drops += u64::from(st.tp_drops);
        Ok(())
    }

    /// Waits for the socket to become readable; false on timeout or signal.
    fn wait_readable(&self, timeout: Duration) -> Result<bool, LiveError> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(LiveError::Socket { iface: self.iface.clone(), call: "poll", source: e });
        }
        if rc > 0 && pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 && pfd.revents & libc::POLLIN == 0 {
            return Err(LiveError::Socket {
                iface: self.iface.clone(),
                call: "poll",
                source: io::Error::other("socket error (interface gone?)"),
            });
        }
        Ok(rc > 0)
    }

    /// One `recvmmsg`; hands the packets to `out`. Returns how many arrived.
    fn receive_batch(&mut self, out: &mut Emitter) -> Result<usize, LiveError> {
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: all-zero mmsghdrs are valid (null pointers, zero lengths).
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iovs[i].write(libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: self.bufs[i].len() });
            let h = &mut msgs[i].msg_hdr;
            h.msg_iov = iovs[i].as_mut_ptr();
            h.msg_iovlen = 1;
            h.msg_control = self.ctrl[i].as_mut_ptr().cast();
            h.msg_controllen = CTRL_WORDS * 8;
        }
        // SAFETY: `msgs` point to BATCH live buffers of the lengths given;
        // MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(LiveError::Socket { iface: self.iface.clone(), call: "recvmmsg", source: e }),
            };
        }
        let n = n as usize;
        for (i, m) in msgs.iter().enumerate().take(n) {
            let wire_len = m.msg_len as usize;
            let (ts, aux) = control(&m.msg_hdr);
            let ts_ns = ts.unwrap_or_else(realtime_ns);
            let cap = wire_len.min(self.bufs[i].len());
            let mut orig_len = aux.as_ref().map_or(wire_len as u32, |a| a.tp_len);
            let data = &self.bufs[i][..cap];
            match aux {
                Some(a) if a.tp_status & TP_STATUS_VLAN_VALID != 0 && self.link == LinkType::Ethernet && cap >= 12 => {
                    // Put back the tag the NIC stripped, as libpcap does.
                    let tpid = if a.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 && a.tp_vlan_tpid != 0 { a.tp_vlan_tpid } else { 0x8100 };
                    self.frame.clear();
                    self.frame.extend_from_slice(&data[..12]);
                    self.frame.extend_from_slice(&tpid.to_be_bytes());
                    self.frame.extend_from_slice(&a.tp_vlan_tci.to_be_bytes());
                    self.frame.extend_from_slice(&data[12..]);
                    orig_len += 4;
                    out.packet(ts_ns, orig_len, self.link, &self.frame);
                }
                _ => {
                    out.packet(ts_ns, orig_len, self.link, data);
                }
            }
        }
        Ok(n)
    }
}

struct Aux {
    tp_status: u32,
    tp_len: u32,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// Reads the timestamp and auxdata control messages of one received message.
fn control(h: &libc::msghdr) -> (Option<i64>, Option<Aux>) {
    let (mut ts, mut aux) = (None, None);
    // SAFETY: the kernel filled `msg_control` with `msg_controllen` bytes of
    // well-formed cmsgs; the CMSG_* macros stay within them, and each payload
    // is read unaligned with the size the kernel documents for its type.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let level = (*c).cmsg_level;
            let ty = (*c).cmsg_type;
            let data = libc::CMSG_DATA(c);
            if level == libc::SOL_SOCKET && ty == SO_TIMESTAMPNS {
                let t: libc::timespec = std::ptr::read_unaligned(data.cast());
                ts = Some(t.tv_sec * 1_000_000_000 + t.tv_nsec);
            } else if level == SOL_PACKET && ty == PACKET_AUXDATA {
                let a: TpacketAuxdata = std::ptr::read_unaligned(data.cast());
                aux = Some(Aux { tp_status: a.tp_status, tp_len: a.tp_len, tp_vlan_tci: a.tp_vlan_tci, tp_vlan_tpid: a.tp_vlan_tpid });
                let _ = (a.tp_snaplen, a.tp_mac, a.tp_net);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    (ts, aux)
}

/// Wall-clock now, ns since the epoch.
pub fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl CaptureSource for AfPacketSource {
    fn info(&self) -> SourceInfo {
        SourceInfo { iface: self.iface.clone(), source: "afpacket", mode: "socket" }
    }

    fn poll(&mut self, out: &mut Emitter, timeout: Duration) -> Result<SourceState, LiveError> {
        if !self.wait_readable(timeout)? {
            return Ok(SourceState::Running);
        }
        for _ in 0..MAX_BATCHES_PER_POLL {
            if self.receive_batch(out)? < BATCH {
                break;
            }
        }
        Ok(SourceState::Running)
    }

    fn stats(&mut self) -> SourceStats {
        let _ = self.read_kernel_stats();
        let now = read_sys_u64(&format!("/sys/class/net/{}/statistics/rx_dropped", self.iface));
        let interface_drops = match (self.rx_dropped_base, now) {
            (Some(b), Some(n)) => n.saturating_sub(b),
            _ => 0,
        };
        SourceStats { socket_drops: self.socket_drops, interface_drops, ..SourceStats::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_types_of_common_interfaces() {
        assert_eq!(link_type_of(1), Some(LinkType::Ethernet));
        assert_eq!(link_type_of(772), Some(LinkType::Ethernet));
        assert_eq!(link_type_of(65534), Some(LinkType::Raw));
        assert_eq!(link_type_of(32), None, "InfiniBand is not decoded");
    }

    #[test]
    fn a_missing_interface_is_a_clear_error() {
        let err = AfPacketSource::open(&SourceConfig::new("osprey-nope0")).expect_err("no such interface");
        assert!(err.to_string().contains("osprey-nope0"), "{err}");
    }

    #[test]
    fn auxdata_layout_matches_the_kernel() {
        assert_eq!(size_of::<TpacketAuxdata>(), 20);
        assert_eq!(size_of::<TpacketStats>(), 8);
        assert_eq!(size_of::<PacketMreq>(), 16);
    }
}
