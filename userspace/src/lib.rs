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
//! - [`ingest`]: the offline pipeline: file → packets → flows + DNS → segments.

pub mod craft;
pub mod dns;
pub mod flow;
pub mod ingest;
pub mod packet;
pub mod pcap;
pub mod reassembly;
