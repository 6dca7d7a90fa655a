//! Osprey's capture and ingest engine.
//!
//! Everything that turns packets (or other telemetry) into records lives here,
//! shared by every input so that offline ingest and live capture agree:
//!
//! - [`pcap`]: pcap and pcapng file reading (writers live in [`craft`]).
//! - [`packet`]: link layer → IP → transport decoding into a [`packet::PacketMeta`].
//! - [`dns`]: DNS wire-format decoding (names, questions, typed answers) and
//!   DNS-over-TCP stream reassembly.
//! - [`flow`]: the flow table with the semantics written down in
//!   `docs/flow-semantics.md` (the kernel programs implement the same).
//! - [`craft`]: building packets byte by byte (tests, the demo generator, benchmarks).
//! - [`reassembly`]: bounded IP fragment reassembly, so DNS split into fragments is decoded.
//! - [`decode`]: packets → flow and DNS records: the per-packet core every input shares.
//! - [`ingest`]: the offline pipeline: capture files → [`decode`] → segments.
//! - [`netflow`]: NetFlow v5/v9 and IPFIX export datagrams (in captures or raw files) → flow segments.
//! - [`proxylog`]: HTTP proxy access logs (Blue Coat as Spot read it, ELFF/W3C, Squid) → proxy segments.
//! - [`live`]: live capture: capture sources, the lock-free pipeline, segment rotation.
//! - [`metrics`]: the metric catalogue, registry and Prometheus endpoint.
//! - [`kernel`]: the XDP program's loader: attach, counters, flow draining, DNS ring.

pub mod craft;
pub mod decode;
pub mod dns;
pub mod flow;
pub mod ingest;
pub mod kernel;
pub mod live;
pub mod metrics;
pub mod netflow;
pub mod packet;
pub mod pcap;
pub mod proxylog;
pub mod reassembly;
