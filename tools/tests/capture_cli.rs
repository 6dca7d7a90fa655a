//! `osprey capture` argument handling that needs no privileges: missing
//! interface, unknown interface (for both sources), and configurations the
//! daemon rejects. Nothing here attaches to a real interface.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_osprey");

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("OSPREY_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run osprey");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn without_an_interface_it_says_how_to_give_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err) = run(&["capture", "--data", dir.path().to_str().expect("utf-8")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--iface"), "{err}");
}

#[test]
fn the_xdp_source_on_an_unknown_interface_is_a_clear_error() {
    // Never attaches anything: the interface does not exist (and without
    // root the program does not even load); either way the error names it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err) =
        run(&["capture", "--iface", "osprey-nope9", "--source", "xdp", "--data", dir.path().to_str().expect("utf-8")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("xdp") && err.contains("osprey-nope9"), "{err}");
}

#[test]
fn af_xdp_settings_are_checked_before_capturing() {
    let (code, err) = run(&["capture", "--iface", "lo", "--source", "xdp"], &[("OSPREY_CAPTURE__AF_XDP_FRAMES", "100")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("af_xdp_frames"), "{err}");
}

#[test]
fn an_unknown_interface_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err) = run(&["capture", "--iface", "osprey-nope9", "--data", dir.path().to_str().expect("utf-8")], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("osprey-nope9"), "{err}");
}

#[test]
fn a_bad_capture_setting_is_rejected_before_capturing() {
    let (code, err) = run(&["capture", "--iface", "lo"], &[("OSPREY_CAPTURE__FLUSH_INTERVAL_SECS", "0")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("flush_interval_secs"), "{err}");
}

#[test]
fn the_source_flag_only_takes_known_sources() {
    let (code, err) = run(&["capture", "--iface", "lo", "--source", "pcap"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("afpacket") && err.contains("xdp"), "{err}");
}
