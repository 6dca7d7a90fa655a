//! Writes the benches' synthetic capture to a file, so the CLI and the peer
//! tools can be run on exactly what `pcap_ingest/synthetic` measures.
//!
//! `cargo run --release -p osprey-benches --example synth_pcap -- OUT.pcap [PACKETS]`

use osprey_benches::{SynthConfig, synthetic_capture};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: synth_pcap OUT.pcap [PACKETS]");
        std::process::exit(2);
    };
    let mut cfg = SynthConfig::default();
    if let Some(n) = args.next() {
        cfg.packets = n
            .to_string_lossy()
            .parse()
            .map_err(|e| std::io::Error::other(format!("PACKETS: {e}")))?;
    }
    let cap = synthetic_capture(cfg);
    std::fs::write(&out, &cap.pcap)?;
    println!(
        "{}: {} packets, {:.1} MB, {} sessions, {} DNS messages",
        std::path::Path::new(&out).display(),
        cap.packets,
        cap.pcap.len() as f64 / 1e6,
        cap.sessions,
        cap.dns_messages
    );
    Ok(())
}
