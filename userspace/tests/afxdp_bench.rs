//! AF_XDP (copy mode, veth) against `AF_PACKET`: how many packets per second
//! each capture source delivers into the pipeline's packet ring from the same
//! traffic (ignored by default; root; run in release):
//!
//! ```text
//! cargo test --release -p osprey-capture --test afxdp_bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! A veth pair joins two throwaway namespaces (`osprey-b-<pid>-cap/-gen`,
//! deleted on exit, addresses in 198.18.0.0/15 only). A sender thread in the
//! generator namespace writes `FRAMES` UDP DNS responses of 600 bytes (64
//! flows) through a packet socket as fast as it can; in the capture
//! namespace either the `AF_PACKET` source or the XDP source (kernel flow
//! accounting + AF_XDP redirection of DNS messages longer than the kernel's
//! copy, which these are) hands every packet to a packet ring that a third
//! thread empties. Rounds alternate between the sources so the machine's
//! load affects both alike; each figure is delivered packets (ring + ring
//! drops, i.e. everything the source received) per second of the send window,
//! with the source's own counted drops beside it.

mod live_support;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use live_support::*;
use osprey_capture::live::ring::{PacketRing, RecordRing};
use osprey_capture::live::xdp::XdpConfig;
use osprey_capture::live::{Emitter, SourceConfig, SourceKind, open_source};

const FRAMES: usize = 400_000;
const ROUNDS: usize = 5;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

struct Bed {
    cap: String,
    gen_ns: String,
}

impl Drop for Bed {
    fn drop(&mut self) {
        for ns in [&self.cap, &self.gen_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Bed {
    fn new() -> Bed {
        let base = format!("osprey-b-{}", std::process::id());
        let b = Bed { cap: format!("{base}-cap"), gen_ns: format!("{base}-gen") };
        for ns in [&b.cap, &b.gen_ns] {
            ip(&["netns", "add", ns]);
            ip(&["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ip(&["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        ip(&["-n", &b.cap, "link", "add", "cap0", "type", "veth", "peer", "name", "gen0", "netns", &b.gen_ns]);
        ip(&["-n", &b.cap, "link", "set", "cap0", "up"]);
        ip(&["-n", &b.gen_ns, "link", "set", "gen0", "up"]);
        b
    }
}

fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns");
    // SAFETY: a valid namespace fd; affects this thread only.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
}

/// Sends `frames` from `gen0` as fast as one thread can; returns the send time.
fn send_all(ns: String, frames: Arc<Vec<Vec<u8>>>) -> Duration {
    enter(&ns);
    // SAFETY: plain syscalls on a socket this function owns.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let name = std::ffi::CString::new("gen0").expect("name");
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        assert_eq!(libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as u32), 0);
        let start = Instant::now();
        for f in frames.iter() {
            while libc::send(fd, f.as_ptr().cast(), f.len(), 0) < 0 {
                std::thread::yield_now();
            }
        }
        let t = start.elapsed();
        libc::close(fd);
        t
    }
}

/// One round: (delivered packets, source drops, send time).
fn round(bed: &Bed, kind: SourceKind, frames: &Arc<Vec<Vec<u8>>>) -> (u64, u64, Duration) {
    let cap = bed.cap.clone();
    let ready = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicBool::new(false));
    let (r2, s2) = (ready.clone(), sent.clone());
    let receiver = std::thread::spawn(move || {
        enter(&cap);
        let mut cfg = SourceConfig::new("cap0");
        cfg.xdp = XdpConfig { af_xdp_dns: true, ..XdpConfig::default() };
        let mut src = open_source(kind, &cfg).expect("open source");
        let (packets, _p) = PacketRing::new(65_536);
        let (records, _r) = RecordRing::new(1024);
        let popped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = {
            let (packets, popped, stop) = (packets.clone(), popped.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) || !packets.is_empty() {
                    match packets.pop() {
                        Some(p) => {
                            popped.fetch_add(1, Ordering::Relaxed);
                            packets.recycle(p.data);
                        }
                        None => std::thread::sleep(Duration::from_micros(200)),
                    }
                }
            })
        };
        // Records (flows, kernel DNS) are drained so their ring never fills.
        let rec_stop = Arc::new(AtomicBool::new(false));
        let rec_consumer = {
            let (records, rec_stop) = (records.clone(), rec_stop.clone());
            std::thread::spawn(move || {
                while !rec_stop.load(Ordering::Relaxed) {
                    if records.pop().is_none() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        };
        let mut em = Emitter::new(packets.clone(), records);
        r2.store(true, Ordering::Release);
        let mut quiet_since: Option<Instant> = None;
        loop {
            let before = popped.load(Ordering::Relaxed) + packets.dropped() + packets.len() as u64;
            src.poll(&mut em, Duration::from_millis(20)).expect("poll");
            let after = popped.load(Ordering::Relaxed) + packets.dropped() + packets.len() as u64;
            if s2.load(Ordering::Acquire) {
                if after == before {
                    let q = *quiet_since.get_or_insert_with(Instant::now);
                    if q.elapsed() > Duration::from_millis(500) {
                        break;
                    }
                } else {
                    quiet_since = None;
                }
            }
        }
        src.finish(&mut em).expect("finish");
        let drops = src.stats().socket_drops;
        drop(src);
        stop.store(true, Ordering::Release);
        consumer.join().expect("consumer");
        rec_stop.store(true, Ordering::Release);
        rec_consumer.join().expect("records");
        (popped.load(Ordering::Relaxed) + packets.dropped(), drops)
    });
    while !ready.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (ns, f) = (bed.gen_ns.clone(), frames.clone());
    let t = std::thread::spawn(move || send_all(ns, f)).join().expect("sender");
    sent.store(true, Ordering::Release);
    let (delivered, drops) = receiver.join().expect("receiver");
    (delivered, drops, t)
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next().map(str::to_string)).unwrap_or_default()
}

#[test]
#[ignore = "benchmark: run with --ignored in release"]
fn af_xdp_copy_mode_vs_af_packet_on_veth() {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: needs root (namespaces, XDP, AF_XDP)");
        return;
    }
    let bed = Bed::new();
    let payload = big_dns_response(1, "bench.osprey.test", 18);
    assert!(payload.len() > 512 && payload.len() < 1400, "{}", payload.len());
    let frames: Arc<Vec<Vec<u8>>> = Arc::new((0..FRAMES).map(|i| udp(v4_server(53), 53, v4_client((i % 64) as u32), 30_000, &payload)).collect());
    let mut results = Vec::new();
    for r in 0..ROUNDS {
        for kind in [SourceKind::AfPacket, SourceKind::Xdp] {
            let load = load1();
            let (delivered, drops, t) = round(&bed, kind, &frames);
            let sent_pps = FRAMES as f64 / t.as_secs_f64();
            let pps = delivered as f64 / t.as_secs_f64();
            eprintln!(
                "round {r} {:<8} sent {FRAMES} in {:.3} s ({:.0} pps), delivered {delivered} ({:.1}%) = {:.0} pps, source drops {drops}, load1 {load}",
                kind.as_str(),
                t.as_secs_f64(),
                sent_pps,
                100.0 * delivered as f64 / FRAMES as f64,
                pps
            );
            results.push((kind, pps));
        }
    }
    let med = |k: SourceKind| {
        let mut v: Vec<f64> = results.iter().filter(|(kk, _)| *kk == k).map(|(_, p)| *p).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, x) = (med(SourceKind::AfPacket), med(SourceKind::Xdp));
    eprintln!("median: af_packet {a:.0} pps, af_xdp (copy) {x:.0} pps, ratio af_xdp/af_packet {:.2}", x / a);
}
