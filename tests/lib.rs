//! Helpers shared by the integration tests in `tests/*.rs`: locating the
//! shared real captures, running tshark as an oracle, and ingesting a file
//! into a throwaway data directory.
//!
//! Tests that need `../shared/data` or tshark print why they skip when either
//! is missing (a user's clone has no `../shared`; CI always has both).

use std::collections::BTreeMap;
use std::net::IpAddr;
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

/// Every path (files and directories) under `dir`, recursively, sorted.
pub fn paths_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Every capture file under `dir`, recursively, sorted.
pub fn captures_under(dir: &Path) -> Vec<PathBuf> {
    paths_under(dir)
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect()
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

/// A flow's direction-free identity for comparing totals: protocol, VLAN and
/// the two endpoints in order (ICMP "ports" are type/code, not part of it).
pub type FlowTotalsKey = (u8, u16, (IpAddr, u16), (IpAddr, u16));

pub fn flow_totals_key(proto: u8, vlan: u16, a: (IpAddr, u16), b: (IpAddr, u16)) -> FlowTotalsKey {
    let (a, b) = if matches!(proto, 1 | 58) { ((a.0, 0), (b.0, 0)) } else { (a, b) };
    if a <= b { (proto, vlan, a, b) } else { (proto, vlan, b, a) }
}

/// Packets and bytes (both directions) per flow key, summed over records
/// (timeouts may split one key into several records).
pub fn flow_totals(recs: &[FlowRecord]) -> BTreeMap<FlowTotalsKey, (u64, u64)> {
    let mut t = BTreeMap::new();
    for r in recs {
        let e = t
            .entry(flow_totals_key(r.proto, r.vlan, (r.src_ip, r.src_port), (r.dst_ip, r.dst_port)))
            .or_insert((0, 0));
        e.0 += r.packets + r.rev_packets;
        e.1 += r.bytes + r.rev_bytes;
    }
    t
}

/// Panics with every differing key printed if two sets of flow totals differ.
pub fn assert_same_flow_totals(
    name: &str,
    got: &BTreeMap<FlowTotalsKey, (u64, u64)>,
    want: &BTreeMap<FlowTotalsKey, (u64, u64)>,
) {
    if got == want {
        return;
    }
    for (k, v) in want {
        if got.get(k) != Some(v) {
            println!("  offline {k:?} = {v:?}, kernel {:?}", got.get(k));
        }
    }
    for (k, v) in got {
        if !want.contains_key(k) {
            println!("  kernel only {k:?} = {v:?}");
        }
    }
    panic!("{name}: per-key flow totals differ");
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


/// Throwaway network namespaces joined by a veth pair, for end-to-end tests
/// of the kernel path (root only).
///
/// [`VethPair::create`] makes namespaces `osp-<pid>-<tag>a` / `...b` with one
/// veth end in each, link-local addresses disabled (`addrgenmode none`, so
/// neither kernel invents an address outside the test ranges), the given
/// IPv4/IPv6 addresses (IPv6 without duplicate address detection) and
/// permanent neighbour entries for each other (no ARP or neighbour
/// discovery on the link). Dropping the guard (also during a panic unwind)
/// deletes both namespaces, which destroys the veth pair and with it any XDP
/// program still attached. [`VethPair::in_ns`] runs a closure on a thread that
/// entered one of the namespaces with `setns(2)`: the only thread of the
/// process that changes namespace, so the test's own threads stay where they
/// are. [`PacketSocket`] writes raw frames with `AF_PACKET`.
pub mod netns {
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;
    use std::process::Command;

    /// Whether the test runs as root (namespaces, veth and BPF need it).
    pub fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// Runs `ip` with `args`; an error carries its stderr.
    pub fn ip(args: &[&str]) -> io::Result<String> {
        let out = Command::new("ip").args(args).output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(io::Error::other(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
        }
    }

    /// Names under a directory (e.g. `/sys/fs/bpf`), sorted, recursively.
    pub fn dir_entries(dir: &Path) -> Vec<String> {
        super::paths_under(dir).iter().map(|p| p.display().to_string()).collect()
    }

    /// One end of the pair.
    #[derive(Debug, Clone)]
    pub struct End {
        /// Namespace name (`ip netns`).
        pub ns: String,
        /// Interface name inside it.
        pub iface: String,
        /// Its MAC address.
        pub mac: [u8; 6],
        /// IPv4 address (prefix in `v4_prefix`).
        pub v4: std::net::Ipv4Addr,
        /// IPv6 address (prefix in `v6_prefix`).
        pub v6: std::net::Ipv6Addr,
    }

    /// Settings of [`VethPair::create`].
    #[derive(Debug, Clone)]
    pub struct PairConfig {
        /// Short tag in the names (keeps concurrent tests apart).
        pub tag: String,
        /// Addresses of end a and end b.
        pub v4: [std::net::Ipv4Addr; 2],
        /// IPv4 prefix length.
        pub v4_prefix: u8,
        /// IPv6 addresses of end a and end b.
        pub v6: [std::net::Ipv6Addr; 2],
        /// IPv6 prefix length.
        pub v6_prefix: u8,
        /// MTU of both ends.
        pub mtu: u32,
    }

    /// The guard: two namespaces and the veth pair between them.
    #[derive(Debug)]
    pub struct VethPair {
        /// End a (where the program is attached, in the tests).
        pub a: End,
        /// End b (where traffic is sent from).
        pub b: End,
        /// MTU of both ends.
        pub mtu: u32,
        created_ns: Vec<String>,
        root_link: Option<String>,
    }

    fn mac_of(ns: &str, iface: &str) -> io::Result<[u8; 6]> {
        let text = ip(&["-n", ns, "-o", "link", "show", "dev", iface])?;
        let hex = text
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .ok_or_else(|| io::Error::other(format!("no link/ether in {text:?}")))?;
        let mut mac = [0u8; 6];
        for (m, h) in mac.iter_mut().zip(hex.split(':')) {
            *m = u8::from_str_radix(h, 16).map_err(io::Error::other)?;
        }
        Ok(mac)
    }

    fn mac_str(m: &[u8; 6]) -> String {
        m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    impl VethPair {
        /// Creates the namespaces and the pair (see the module docs).
        pub fn create(cfg: &PairConfig) -> io::Result<VethPair> {
            let pid = std::process::id();
            let name = |s: &str| format!("osp-{pid}-{}{s}", cfg.tag);
            let mut pair = VethPair {
                a: End { ns: name("a"), iface: format!("o{pid}{}a", cfg.tag), mac: [0; 6], v4: cfg.v4[0], v6: cfg.v6[0] },
                b: End { ns: name("b"), iface: format!("o{pid}{}b", cfg.tag), mac: [0; 6], v4: cfg.v4[1], v6: cfg.v6[1] },
                mtu: cfg.mtu,
                created_ns: Vec::new(),
                root_link: None,
            };
            if pair.a.iface.len() > 15 {
                return Err(io::Error::other(format!("interface name {} too long", pair.a.iface)));
            }
            for ns in [pair.a.ns.clone(), pair.b.ns.clone()] {
                ip(&["netns", "add", &ns])?;
                pair.created_ns.push(ns);
            }
            let (ia, ib) = (pair.a.iface.clone(), pair.b.iface.clone());
            ip(&["link", "add", &ia, "type", "veth", "peer", "name", &ib])?;
            pair.root_link = Some(ia.clone());
            ip(&["link", "set", &ia, "netns", &pair.a.ns])?;
            ip(&["link", "set", &ib, "netns", &pair.b.ns])?;
            pair.root_link = None;
            let mtu = cfg.mtu.to_string();
            for end in [&mut pair.a, &mut pair.b] {
                let (ns, dev) = (end.ns.as_str(), end.iface.as_str());
                ip(&["-n", ns, "link", "set", "dev", dev, "addrgenmode", "none"])?;
                ip(&["-n", ns, "link", "set", "dev", dev, "mtu", &mtu])?;
                ip(&["-n", ns, "addr", "add", &format!("{}/{}", end.v4, cfg.v4_prefix), "dev", dev])?;
                ip(&["-n", ns, "addr", "add", &format!("{}/{}", end.v6, cfg.v6_prefix), "dev", dev, "nodad"])?;
                end.mac = mac_of(ns, dev)?;
            }
            for (me, peer) in [(&pair.a, &pair.b), (&pair.b, &pair.a)] {
                let mac = mac_str(&peer.mac);
                for addr in [peer.v4.to_string(), peer.v6.to_string()] {
                    ip(&["-n", &me.ns, "neigh", "replace", &addr, "lladdr", &mac, "dev", &me.iface, "nud", "permanent"])?;
                }
            }
            for end in [&pair.a, &pair.b] {
                ip(&["-n", &end.ns, "link", "set", "dev", &end.iface, "up"])?;
            }
            Ok(pair)
        }

        /// Runs `f` on a new thread that entered namespace `ns` (`setns`),
        /// and returns its result (a panic in `f` is re-raised here).
        pub fn in_ns<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> io::Result<R> {
            let file = File::open(Path::new("/run/netns").join(ns))?;
            std::thread::scope(|s| {
                let h = s.spawn(move || {
                    // SAFETY: a valid namespace fd; this thread alone changes namespace.
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(f())
                });
                match h.join() {
                    Ok(r) => r,
                    Err(p) => std::panic::resume_unwind(p),
                }
            })
        }

        /// `ip -d link show` of an end (shows `xdp` / `xdpgeneric` and the program id).
        pub fn link_details(end: &End) -> io::Result<String> {
            ip(&["-n", &end.ns, "-d", "link", "show", "dev", &end.iface])
        }

        /// Interface statistics of an end (`ip -s link show`).
        pub fn link_stats(end: &End) -> io::Result<String> {
            ip(&["-n", &end.ns, "-s", "link", "show", "dev", &end.iface])
        }
    }

    impl Drop for VethPair {
        fn drop(&mut self) {
            if let Some(l) = self.root_link.take() {
                let _ = ip(&["link", "del", &l]);
            }
            // Deleting a namespace destroys its veth end, the peer with it, and
            // any XDP program attached there.
            for ns in self.created_ns.drain(..) {
                if let Err(e) = ip(&["netns", "del", &ns]) {
                    eprintln!("cleanup: {e}");
                }
            }
        }
    }

    /// An `AF_PACKET` raw socket bound to one interface of the calling
    /// thread's namespace, for writing whole Ethernet frames. It receives
    /// nothing (protocol 0).
    #[derive(Debug)]
    pub struct PacketSocket {
        fd: OwnedFd,
        ifindex: i32,
    }

    impl PacketSocket {
        /// Opens and binds the socket (call from a thread inside the namespace).
        pub fn bind(iface: &str) -> io::Result<PacketSocket> {
            let c = CString::new(iface).map_err(io::Error::other)?;
            // SAFETY: a NUL-terminated name.
            let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
            if ifindex == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: plain socket call; the fd is owned below.
            let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: sockaddr_ll is plain data; zero is a valid start.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex;
            // SAFETY: a valid sockaddr_ll of the size given.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(PacketSocket { fd, ifindex })
        }

        /// The interface index bound to.
        pub fn ifindex(&self) -> i32 {
            self.ifindex
        }

        /// Writes one frame (destination MAC first) as it is.
        pub fn send(&self, frame: &[u8]) -> io::Result<()> {
            // SAFETY: sockaddr_ll is plain data.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex;
            sll.sll_halen = 6;
            let n = frame.len().min(6);
            sll.sll_addr[..n].copy_from_slice(&frame[..n]);
            // SAFETY: `frame` is valid for its length; `sll` for its size.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else if r as usize != frame.len() {
                Err(io::Error::other(format!("short write: {r} of {}", frame.len())))
            } else {
                Ok(())
            }
        }
    }
}
