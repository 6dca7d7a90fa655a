//! Live capture: packets from an interface → flow and DNS segments,
//! continuously, with bounded memory and without ever making the capture
//! side wait.
//!
//! - [`source`]: the [`CaptureSource`] trait (raw packets or ready records),
//!   the [`Emitter`] sources hand them to, and [`open_source`];
//! - [`afpacket`]: the `AF_PACKET` source (works on any interface);
//! - [`xdp`]: the kernel path as a source (XDP program: flows and DNS in the
//!   kernel), with [`afxdp`] sockets for the packets it hands to userspace and
//!   [`pcapng_segments`] for the optional packet sample;
//! - [`replay`]: a source replaying a capture held in memory (tests, benchmarks);
//! - the packet → records core is [`crate::decode`], shared with offline ingest;
//! - [`ring`]: the bounded lock-free rings between stages and the batcher;
//! - [`writer`]: the segment stage and its publication schedule (flush, rotation);
//! - [`pipeline`]: the threads, their shutdown order, and the run report;
//! - [`lock`]: one writer per sensor name, and removal of a crashed run's partial files.
//!
//! The kernel path (XDP program, AF_XDP sockets) is another
//! [`CaptureSource`]: it hands ready flow and DNS records to the [`Emitter`]
//! and, for AF_XDP, raw packets that the same decoder handles.

pub mod afpacket;
pub mod afxdp;
pub mod lock;
pub mod pcapng_segments;
pub mod pipeline;
pub mod replay;
pub mod ring;
pub mod source;
pub mod writer;
pub mod xdp;

pub use pipeline::{Pipeline, PipelineConfig, PipelineReport};
pub use source::{CaptureSource, Emitter, SourceConfig, SourceInfo, SourceKind, SourceState, SourceStats, open_source};

/// Errors of live capture.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The interface does not exist or cannot be captured.
    #[error("interface {iface}")]
    Interface {
        /// Interface name.
        iface: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A socket call failed.
    #[error("{call} on {iface}")]
    Socket {
        /// Interface name.
        iface: String,
        /// The failing call.
        call: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The requested source is not available here.
    #[error("capture source {source_kind} is not available: {reason}")]
    SourceUnavailable {
        /// Which source.
        source_kind: &'static str,
        /// Why, and what to use instead.
        reason: String,
    },
    /// The sensor lock could not be taken (another daemon writes as this sensor).
    #[error("locking {path}")]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kernel path (loading, attaching, maps) failed.
    #[error("XDP kernel path on {iface}")]
    Kernel {
        /// Interface name.
        iface: String,
        /// Why (boxed: it can carry a whole verifier log).
        #[source]
        source: Box<crate::kernel::KernelError>,
    },
    /// Writing segments failed.
    #[error("writing segments")]
    Segment(#[from] osprey_segment::SegmentError),
    /// Metric registration failed (a bug: names and labels are static).
    #[error("registering metrics")]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A pipeline thread could not be started.
    #[error("starting a pipeline thread")]
    Thread(#[source] std::io::Error),
    /// A pipeline thread panicked.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}
