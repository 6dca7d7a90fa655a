//! BPF_PROG_TEST_RUN fixtures for the AF_XDP redirect decision
//! (`ebpf/src/xsk.bpf.h`): for each packet class, what the program decides
//! (per-class counters) and its verdict. With no socket bound (test runs have
//! none) every verdict must stay XDP_PASS: host traffic is never harmed when
//! nobody listens; with redirection off (the default) nothing is even looked at.
//!
//! Needs root (loading BPF); prints why it skips otherwise.

mod live_support;

use live_support::*;
use osprey_capture::kernel::{KernelCapture, KernelConfig, XskConfig};
use osprey_ebpf::consts;

const XDP_PASS: u32 = 2;

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: loading BPF programs needs root (CAP_BPF + CAP_NET_ADMIN)");
        return false;
    }
    true
}

fn dns_classes() -> u32 {
    (consts::XSK_CLASS_TCP_DNS | consts::XSK_CLASS_FRAGMENT | consts::XSK_CLASS_LARGE_DNS) as u32
}

fn load(classes: u32, sample_every: u32) -> KernelCapture {
    let xsk = XskConfig { classes, sample_every, tcp_dns_ports: [53, 0, 0, 0], udp_dns_ports: [53, 5353, 0, 0] };
    KernelCapture::load(KernelConfig { dns_ports: vec![53, 5353], xsk, ..KernelConfig::default() }).expect("load")
}

/// Runs `frame` once; returns the verdict and the change of every XSK counter.
fn decide(k: &mut KernelCapture, frame: &[u8]) -> (u32, [u64; osprey_ebpf::XSK_CNT_MAX]) {
    let before = k.xsk_counters().expect("counters");
    let (verdict, _) = k.test_run(frame, 1).expect("run");
    let after = k.xsk_counters().expect("counters");
    let mut d = [0; osprey_ebpf::XSK_CNT_MAX];
    for i in 0..d.len() {
        d[i] = after[i] - before[i];
    }
    (verdict, d)
}

/// The class counter a frame moved (`None`: no class).
fn class_of(d: &[u64; osprey_ebpf::XSK_CNT_MAX]) -> Option<u64> {
    let classes = [consts::XSK_CNT_TCP_DNS, consts::XSK_CNT_FRAGMENT, consts::XSK_CNT_LARGE_DNS, consts::XSK_CNT_SAMPLE];
    let hit: Vec<u64> = classes.into_iter().filter(|c| d[*c as usize] > 0).collect();
    assert!(hit.len() <= 1, "one class per frame here: {d:?}");
    hit.first().copied()
}

#[test]
fn each_packet_class_gets_the_right_decision_and_nothing_is_redirected_without_a_socket() {
    if !root() {
        return;
    }
    let mut k = load(dns_classes(), 0);
    let (c4, s4) = (v4_client(1), v4_server(1));
    let (c6, s6) = (v6(1, 1), v6(2, 1));
    let small = dns_msg(1, "a.osprey.test", false);
    let big = big_dns_response(2, "big.osprey.test", 40);
    assert!(big.len() > consts::DNS_MAX_COPY as usize && small.len() < consts::DNS_MAX_COPY as usize);
    let edge = {
        // Exactly the kernel's copy: still complete in the kernel record.
        let mut m = big.clone();
        m.truncate(consts::DNS_MAX_COPY as usize);
        m
    };
    let cases: Vec<(&str, Vec<u8>, Option<u64>)> = vec![
        ("udp dns query", udp(c4, 40000, s4, 53, &small), None),
        ("udp dns 512 bytes", udp(s4, 53, c4, 40000, &edge), None),
        ("udp dns 513+ bytes", udp(s4, 53, c4, 40000, &big), Some(consts::XSK_CNT_LARGE_DNS)),
        ("udp dns 513+ bytes v6", udp(s6, 53, c6, 40000, &big), Some(consts::XSK_CNT_LARGE_DNS)),
        ("udp 513+ bytes, port 5353", udp(s4, 5353, c4, 5353, &big), Some(consts::XSK_CNT_LARGE_DNS)),
        ("udp 513+ bytes, not dns", udp(s4, 9999, c4, 40000, &big), None),
        ("tcp syn to 53", tcp(c4, 40001, s4, 53, 0x02, 1, b""), Some(consts::XSK_CNT_TCP_DNS)),
        ("tcp from 53", tcp(s4, 53, c4, 40001, 0x18, 9, &[0, 12]), Some(consts::XSK_CNT_TCP_DNS)),
        ("tcp v6 to 53", tcp(c6, 40001, s6, 53, 0x10, 9, b""), Some(consts::XSK_CNT_TCP_DNS)),
        ("tcp to 443", tcp(c4, 40001, s4, 443, 0x02, 1, b""), None),
        ("tcp to 5353 (not a tcp dns port)", tcp(c4, 40001, s4, 5353, 0x02, 1, b""), None),
        ("udp to 443", udp(c4, 40001, s4, 443, &[1; 40]), None),
    ];
    let mut frags = udp_fragments(s4, 53, c4, 40002, &big, 256, 77);
    frags.extend(udp_fragments(s6, 53, c6, 40002, &big, 256, 78));
    frags.extend(udp_fragments(c4, 7000, s4, 7001, &[5; 900], 256, 79));
    assert!(frags.len() >= 9);
    let mut all = cases;
    for (i, f) in frags.into_iter().enumerate() {
        all.push((if i < 3 { "first fragments" } else { "fragment" }, f, Some(consts::XSK_CNT_FRAGMENT)));
    }
    for (what, frame, want) in &all {
        let (verdict, d) = decide(&mut k, frame);
        assert_eq!(verdict, XDP_PASS, "{what}: no socket is bound, so the packet goes on to the host");
        assert_eq!(class_of(&d), *want, "{what}: {d:?}");
        let wanted = u64::from(want.is_some());
        assert_eq!(d[consts::XSK_CNT_NO_SOCKET as usize], wanted, "{what}");
        assert_eq!(d[consts::XSK_CNT_REDIRECTED as usize], 0, "{what}");
        assert_eq!(d[consts::XSK_CNT_SEEN as usize], 1, "{what}");
    }
    // Truncations never confuse the decision into anything but a pass.
    for (what, frame, _) in &all {
        // (test runs need at least an Ethernet header)
        for cut in 14..frame.len() {
            let (verdict, _) = decide(&mut k, &frame[..cut]);
            assert_eq!(verdict, XDP_PASS, "{what} cut at {cut}");
        }
    }
}

#[test]
fn classes_are_opt_in_and_the_sample_is_one_in_n() {
    if !root() {
        return;
    }
    // Default configuration: the decision is not even made.
    let mut k = KernelCapture::load(KernelConfig::default()).expect("load");
    let big = big_dns_response(2, "big.osprey.test", 40);
    for f in [udp(v4_server(1), 53, v4_client(1), 40000, &big), tcp(v4_client(1), 1, v4_server(1), 53, 2, 1, b"")] {
        let (verdict, d) = decide(&mut k, &f);
        assert_eq!(verdict, XDP_PASS);
        assert_eq!(d, [0; osprey_ebpf::XSK_CNT_MAX], "redirection off: nothing counted");
    }
    // Only the TCP class: a large UDP message is not taken.
    let mut k = load(consts::XSK_CLASS_TCP_DNS as u32, 0);
    assert_eq!(class_of(&decide(&mut k, &udp(v4_server(1), 53, v4_client(1), 40000, &big)).1), None);
    assert_eq!(class_of(&decide(&mut k, &tcp(v4_client(1), 1, v4_server(1), 53, 2, 1, b"")).1), Some(consts::XSK_CNT_TCP_DNS));
    // A 1-in-4 sample of everything (test runs are on one CPU at a time, but
    // the clock is per CPU: count over all of them).
    let mut k = load(0, 4);
    let f = udp(v4_client(1), 1, v4_server(1), 9, &[0; 20]);
    k.test_run(&f, 400).expect("run");
    let c = k.xsk_counters().expect("counters");
    assert_eq!(c[consts::XSK_CNT_SEEN as usize], 400);
    assert_eq!(c[consts::XSK_CNT_SAMPLE as usize], 100);
    assert_eq!(c[consts::XSK_CNT_NO_SOCKET as usize], 100);
    assert_eq!(c[consts::XSK_CNT_TCP_DNS as usize] + c[consts::XSK_CNT_LARGE_DNS as usize], 0);
}
