//! The kernel path's userspace half: loads Osprey's XDP program
//! ([`osprey_ebpf::OBJECT`], C compiled by `ebpf/build.rs`), attaches it
//! through a BPF link (native mode, falling back to generic), reads its
//! counters, drains its flow map into [`FlowRecord`]s with the same expiry
//! rules as the offline [`crate::flow::FlowTable`], consumes its DNS ring and
//! decodes the messages with the offline parser ([`crate::dns::parse_message`]),
//! and detaches cleanly (nothing is pinned; dropping [`KernelCapture`]
//! releases the link, the programs and the maps).
//!
//! # Flow map and draining without races
//!
//! Flows live in two per-CPU hashes (`BPF_MAP_TYPE_PERCPU_HASH`,
//! preallocated), `flows4` keyed by the 16-byte [`FlowKey4`] and `flows6` by
//! the 40-byte [`FlowKey`] (a short key makes every packet's lookup several ns
//! cheaper); each holds up to `max_flows` flows, and the sweep below runs over
//! both, turning IPv4 keys into the IPv4-mapped [`FlowKey`] of the records.
//! Each flow key has one [`FlowVal`] slot per CPU, updated by that CPU only,
//! with plain (non-atomic) adds. The kernel itself applies the lazy expiry of
//! `docs/flow-semantics.md` when a packet arrives for a slot whose time is up
//! (linger passed or a pure SYN on a closing flow, idle, active): it sends the
//! old slot on the `flow_ends` ring and restarts the slot, bumping its
//! `generation`. Flows that simply stop are ended by [`KernelCapture::drain`]:
//!
//! 1. read the `flow_ends` ring (records the kernel ended);
//! 2. read the whole map with `BPF_MAP_LOOKUP_BATCH` and judge each flow's
//!    merged slots against the clock (same rules and order as the offline sweep);
//! 3. for each expired flow, `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: the values it
//!    returns are the ones removed, so every packet counted before the delete
//!    is in the record. A slot whose generation changed between steps 2 and 3
//!    was restarted by the kernel meanwhile (its old contents are on the ring);
//!    its new contents are a live flow and are put back (`BPF_NOEXIST`), or, if
//!    the kernel already re-created the key, emitted as a record of their own.
//!
//! Nothing is counted twice and nothing is lost; the only imprecision is the
//! classic one of unlocked BPF hash maps (a packet whose update races the
//! delete within nanoseconds may land in the removed element).
//!
//! # Clock
//!
//! The kernel stamps packets with `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC
//! at tick resolution), read once per tick per CPU (it caches the value
//! against `bpf_jiffies64`, an inlined load; see `now_ns` in `osprey.bpf.c`),
//! unless configured to use `bpf_ktime_get_ns` (~30 ns per packet here);
//! userspace converts to wall time with the current
//! `CLOCK_REALTIME - CLOCK_MONOTONIC` offset.

mod sys;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use aya::maps::{IterableMap, MapData, PerCpuArray, PerCpuHashMap, ProgramArray, RingBuf, XskMap};
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode};
use aya::programs::xdp::XdpLinkId;
use aya::{Ebpf, EbpfLoader};
use osprey_ebpf::{consts, Counters, DnsEvent, FlowEnd, FlowKey, FlowKey4, FlowVal, OspreyConfig, XskCounters};
pub use osprey_ebpf::XskConfig;
use osprey_segment::{DnsRecord, DnsTransport, EndReason, FlowRecord};

use crate::dns::{self, DnsError, DnsRecordContext};
use crate::flow::{FlowConfig, FlowState};
use crate::packet::SkipReason;
use osprey_segment::schema::ip_from_bytes;

pub use osprey_ebpf::{DnsEvent as KernelDnsEvent, FlowKey as KernelFlowKey};

/// Settings of the kernel program (fixed at load time).
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// Timeouts and capacity (`max_flows` is the size of each flow map, IPv4
    /// and IPv6), shared with offline ingest.
    pub flow: FlowConfig,
    /// Stamp packets with `bpf_ktime_get_coarse_ns` (default) instead of `bpf_ktime_get_ns`.
    pub coarse_clock: bool,
    /// Extract DNS in the kernel.
    pub dns: bool,
    /// UDP ports decoded as DNS (at most `OSPREY_DNS_MAX_PORTS`).
    pub dns_ports: Vec<u16>,
    /// DNS ring size in bytes (a power of two, multiple of the page size).
    pub dns_ring_bytes: u32,
    /// Flow-end ring size in bytes.
    pub flow_end_ring_bytes: u32,
    /// Pending ring bytes that force a consumer wake-up.
    pub wakeup_bytes: u32,
    /// Which packets go to AF_XDP sockets (default: none; see `ebpf/src/xsk.bpf.h`).
    pub xsk: XskConfig,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            flow: FlowConfig { max_flows: consts::FLOW_MAP_ENTRIES as usize, ..FlowConfig::default() },
            coarse_clock: true,
            dns: true,
            dns_ports: vec![consts::DNS_PORT as u16],
            dns_ring_bytes: consts::DNS_RING_BYTES as u32,
            flow_end_ring_bytes: consts::FLOW_END_RING_BYTES as u32,
            wakeup_bytes: consts::RING_WAKEUP_BYTES as u32,
            xsk: XskConfig::default(),
        }
    }
}

/// Errors of the kernel path.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The configuration cannot be expressed to the kernel program.
    #[error("invalid kernel configuration: {0}")]
    Config(String),
    /// The object could not be parsed or its maps created.
    #[error("loading the BPF object: {0}")]
    Object(#[source] aya::EbpfError),
    /// The verifier rejected a program; `log` is its log.
    #[error("the verifier rejected {program}: {source}\n--- verifier log ---\n{log}")]
    Verifier {
        /// Program name.
        program: String,
        /// The `BPF_PROG_LOAD` error.
        source: io::Error,
        /// The verifier log.
        log: String,
    },
    /// A program operation failed.
    #[error("{what}: {source}")]
    Program {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: ProgramError,
    },
    /// Attaching failed in every mode tried.
    #[error("attaching to {iface} failed: native: {native}; generic: {generic}")]
    Attach {
        /// Interface.
        iface: String,
        /// Error in native (driver) mode, or "not tried".
        native: String,
        /// Error in generic (skb) mode, or "not tried".
        generic: String,
    },
    /// A map operation failed.
    #[error("map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// Why.
        source: io::Error,
    },
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> KernelError {
    move |e| KernelError::Map { map, source: io::Error::other(e.to_string()) }
}

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// In the generic (skb) path: works on any device, slower.
    Generic,
}

/// Which mode to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachRequest {
    /// Native, falling back to generic.
    #[default]
    Auto,
    /// Native only.
    Native,
    /// Generic only.
    Generic,
}

/// Kernel counters summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelCounters {
    /// Raw counters, indexed by `OSPREY_SKIP_*` / `OSPREY_CNT_*`.
    pub raw: [u64; osprey_ebpf::CNT_MAX],
}

impl KernelCounters {
    /// Packets skipped for `reason`.
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.raw[reason.index()]
    }
    /// Skip counts in [`SkipReason`] index order (as `IngestStats::skipped`).
    pub fn skipped_all(&self) -> [u64; SkipReason::COUNT] {
        let mut out = [0; SkipReason::COUNT];
        out.copy_from_slice(&self.raw[..SkipReason::COUNT]);
        out
    }
    /// A counter by its `OSPREY_CNT_*` index.
    pub fn get(&self, index: u64) -> u64 {
        self.raw.get(index as usize).copied().unwrap_or(0)
    }
    /// Packets the program saw.
    pub fn packets(&self) -> u64 {
        self.get(consts::CNT_PACKETS)
    }
    /// Packets accounted to a flow.
    pub fn flow_packets(&self) -> u64 {
        self.get(consts::CNT_FLOW_PACKETS)
    }
    /// Packets lost to a full flow map.
    pub fn flow_table_full(&self) -> u64 {
        self.get(consts::CNT_FLOW_TABLE_FULL)
    }
}

/// Counters of userspace draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainStats {
    /// Records read from the flow-end ring.
    pub ring_records: u64,
    /// Records ended by the sweep (idle, linger, active).
    pub swept: u64,
    /// Slots the kernel restarted between read and delete, put back.
    pub reinserted: u64,
    /// Such slots emitted as records of their own (the key was re-created).
    pub split: u64,
    /// DNS ring records read.
    pub dns_events: u64,
}

/// `CLOCK_REALTIME - CLOCK_MONOTONIC`, ns: add to a kernel timestamp for wall time.
pub fn mono_to_wall_offset() -> i64 {
    let (r, m) = (clock_ns(libc::CLOCK_REALTIME), clock_ns(libc::CLOCK_MONOTONIC));
    r - m
}

/// The kernel's monotonic clock now (what `bpf_ktime_get_ns` returns), ns.
pub fn monotonic_ns() -> i64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The loaded program, its maps, and (optionally) its attachment.
pub struct KernelCapture {
    ebpf: Ebpf,
    flows4: PerCpuHashMap<MapData, FlowKey4, FlowVal>,
    flows6: PerCpuHashMap<MapData, FlowKey, FlowVal>,
    counters: PerCpuArray<MapData, Counters>,
    dns_ring: RingBuf<MapData>,
    flow_ring: RingBuf<MapData>,
    ncpus: usize,
    cfg: KernelConfig,
    /// What the kernel was loaded with (timeouts in ns).
    kcfg: OspreyConfig,
    attached: Option<(String, XdpLinkId, AttachMode)>,
    /// Initiator side (`a_initiated`) of flows the sweep ended by active
    /// timeout, so their continuation keeps it (deadline: monotonic ns).
    continuations: HashMap<FlowKey, (u8, i64)>,
    stats: DrainStats,
    bench_loaded: bool,
}

/// Benchmark-only programs and their state map (see `osprey.bpf.c`).
const PROG_BENCH_SPREAD: &str = "osprey_bench_spread";
const PROG_BENCH_SPREAD_NOOP: &str = "osprey_bench_spread_noop";
const MAP_BENCH_STATE: &str = "bench_state";
const MAP_BENCH_PROGS: &str = "bench_progs";

impl std::fmt::Debug for KernelCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelCapture")
            .field("cfg", &self.cfg)
            .field("ncpus", &self.ncpus)
            .field("attached", &self.attached.as_ref().map(|(i, _, m)| (i, m)))
            .field("stats", &self.stats)
            .finish()
    }
}

fn load_prog(ebpf: &mut Ebpf, name: &str) -> Result<(), KernelError> {
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| KernelError::Config(format!("program {name} missing from the object")))?
        .try_into()
        .map_err(|source| KernelError::Program { what: format!("{name} is not XDP"), source })?;
    prog.load().map_err(|e| match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            KernelError::Verifier { program: name.to_string(), source: io_error, log: format!("{verifier_log:?}") }
        }
        source => KernelError::Program { what: format!("loading {name}"), source },
    })
}

fn secs_ns(s: u64) -> u64 {
    s.saturating_mul(1_000_000_000)
}

impl KernelCapture {
    /// Loads the object with `cfg` (maps sized, `.rodata` set) and verifies
    /// both programs. Nothing is attached yet; test runs work right away.
    pub fn load(cfg: KernelConfig) -> Result<Self, KernelError> {
        if cfg.dns_ports.len() > osprey_ebpf::DNS_MAX_PORTS {
            return Err(KernelError::Config(format!(
                "{} DNS ports configured, the kernel program takes at most {}",
                cfg.dns_ports.len(),
                osprey_ebpf::DNS_MAX_PORTS
            )));
        }
        let max_flows = u32::try_from(cfg.flow.max_flows)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| KernelError::Config(format!("max_flows {} out of range", cfg.flow.max_flows)))?;
        let mut kcfg = OspreyConfig {
            idle_ns: secs_ns(cfg.flow.idle_timeout_secs),
            active_ns: secs_ns(cfg.flow.active_timeout_secs),
            linger_ns: secs_ns(cfg.flow.tcp_linger_secs),
            coarse_clock: u32::from(cfg.coarse_clock),
            dns_enabled: u32::from(cfg.dns),
            wakeup_bytes: cfg.wakeup_bytes,
            ..OspreyConfig::default()
        };
        kcfg.dns_ports = [0; osprey_ebpf::DNS_MAX_PORTS];
        kcfg.dns_ports[..cfg.dns_ports.len()].copy_from_slice(&cfg.dns_ports);
        Self::load_raw(cfg, kcfg, max_flows)
    }

    /// [`KernelCapture::load`] with timeouts given in ns (tests use
    /// sub-second timeouts; [`FlowConfig`] counts whole seconds).
    pub fn load_with_timeouts_ns(cfg: KernelConfig, idle_ns: u64, active_ns: u64, linger_ns: u64) -> Result<Self, KernelError> {
        let mut kcfg = OspreyConfig::default();
        let ports = cfg.dns_ports.len().min(osprey_ebpf::DNS_MAX_PORTS);
        kcfg.dns_ports = [0; osprey_ebpf::DNS_MAX_PORTS];
        kcfg.dns_ports[..ports].copy_from_slice(&cfg.dns_ports[..ports]);
        kcfg.idle_ns = idle_ns;
        kcfg.active_ns = active_ns;
        kcfg.linger_ns = linger_ns;
        kcfg.coarse_clock = u32::from(cfg.coarse_clock);
        kcfg.dns_enabled = u32::from(cfg.dns);
        kcfg.wakeup_bytes = cfg.wakeup_bytes;
        let max_flows = u32::try_from(cfg.flow.max_flows).unwrap_or(u32::MAX).max(1);
        Self::load_raw(cfg, kcfg, max_flows)
    }

    fn load_raw(cfg: KernelConfig, kcfg: OspreyConfig, max_flows: u32) -> Result<Self, KernelError> {
        if cfg.xsk.tcp_dns_ports.iter().chain(&cfg.xsk.udp_dns_ports).all(|p| *p == 0) && cfg.xsk.classes != 0 {
            return Err(KernelError::Config("AF_XDP DNS redirection needs at least one DNS port".into()));
        }
        let mut ebpf = EbpfLoader::new()
            .override_global(osprey_ebpf::GLOBAL_CONFIG, &kcfg, true)
            .map_max_entries(osprey_ebpf::MAP_FLOWS4, max_flows)
            .map_max_entries(osprey_ebpf::MAP_FLOWS6, max_flows)
            .map_max_entries(osprey_ebpf::MAP_DNS_EVENTS, cfg.dns_ring_bytes)
            .map_max_entries(osprey_ebpf::MAP_FLOW_ENDS, cfg.flow_end_ring_bytes)
            .override_global(osprey_ebpf::GLOBAL_XSK_CONFIG, &cfg.xsk, true)
            .load(osprey_ebpf::OBJECT)
            .map_err(KernelError::Object)?;
        load_prog(&mut ebpf, osprey_ebpf::PROG_XDP)?;
        load_prog(&mut ebpf, osprey_ebpf::PROG_NOOP)?;
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(KernelError::Map { map: name, source: io::Error::other("missing from the object") })
        };
        let flows4 =
            PerCpuHashMap::try_from(take(&mut ebpf, osprey_ebpf::MAP_FLOWS4)?).map_err(map_err(osprey_ebpf::MAP_FLOWS4))?;
        let flows6 =
            PerCpuHashMap::try_from(take(&mut ebpf, osprey_ebpf::MAP_FLOWS6)?).map_err(map_err(osprey_ebpf::MAP_FLOWS6))?;
        let counters =
            PerCpuArray::try_from(take(&mut ebpf, osprey_ebpf::MAP_COUNTERS)?).map_err(map_err(osprey_ebpf::MAP_COUNTERS))?;
        let dns_ring =
            RingBuf::try_from(take(&mut ebpf, osprey_ebpf::MAP_DNS_EVENTS)?).map_err(map_err(osprey_ebpf::MAP_DNS_EVENTS))?;
        let flow_ring =
            RingBuf::try_from(take(&mut ebpf, osprey_ebpf::MAP_FLOW_ENDS)?).map_err(map_err(osprey_ebpf::MAP_FLOW_ENDS))?;
        let ncpus = aya::util::nr_cpus()
            .map_err(|(what, source)| KernelError::Map { map: "flows", source: io::Error::new(source.kind(), format!("{what}: {source}")) })?;
        Ok(KernelCapture {
            ebpf,
            flows4,
            flows6,
            counters,
            dns_ring,
            flow_ring,
            ncpus,
            cfg,
            kcfg,
            attached: None,
            continuations: HashMap::new(),
            stats: DrainStats::default(),
            bench_loaded: false,
        })
    }

    /// The configuration loaded.
    pub fn config(&self) -> &KernelConfig {
        &self.cfg
    }

    /// Drain counters.
    pub fn drain_stats(&self) -> DrainStats {
        self.stats
    }

    fn xdp(&mut self, name: &str) -> Result<&mut Xdp, KernelError> {
        self.ebpf
            .program_mut(name)
            .ok_or_else(|| KernelError::Config(format!("program {name} missing")))?
            .try_into()
            .map_err(|source| KernelError::Program { what: format!("{name} is not XDP"), source })
    }

    /// Attaches the capture program to `iface` through a BPF link and
    /// returns the mode in effect.
    pub fn attach(&mut self, iface: &str, req: AttachRequest) -> Result<AttachMode, KernelError> {
        if self.attached.is_some() {
            self.detach()?;
        }
        let mut native_err = "not tried".to_string();
        let prog = self.xdp(osprey_ebpf::PROG_XDP)?;
        if req != AttachRequest::Generic {
            match prog.attach(iface, XdpMode::Driver) {
                Ok(id) => {
                    self.attached = Some((iface.to_string(), id, AttachMode::Native));
                    tracing::info!(iface, "XDP program attached in native mode");
                    return Ok(AttachMode::Native);
                }
                Err(e) => native_err = e.to_string(),
            }
        }
        let mut generic_err = "not tried".to_string();
        if req != AttachRequest::Native {
            match prog.attach(iface, XdpMode::Skb) {
                Ok(id) => {
                    self.attached = Some((iface.to_string(), id, AttachMode::Generic));
                    tracing::warn!(iface, native = %native_err, "XDP program attached in generic (skb) mode");
                    return Ok(AttachMode::Generic);
                }
                Err(e) => generic_err = e.to_string(),
            }
        }
        Err(KernelError::Attach { iface: iface.to_string(), native: native_err, generic: generic_err })
    }

    /// Where and how the program is attached.
    pub fn attachment(&self) -> Option<(&str, AttachMode)> {
        self.attached.as_ref().map(|(i, _, m)| (i.as_str(), *m))
    }

    /// Detaches (closes the link). Idempotent.
    pub fn detach(&mut self) -> Result<(), KernelError> {
        if let Some((iface, id, _)) = self.attached.take() {
            self.xdp(osprey_ebpf::PROG_XDP)?
                .detach(id)
                .map_err(|source| KernelError::Program { what: format!("detaching from {iface}"), source })?;
        }
        Ok(())
    }

    /// Runs the capture program once per `repeat` on `packet` with
    /// `BPF_PROG_TEST_RUN`: returns (verdict, average ns per run).
    pub fn test_run(&mut self, packet: &[u8], repeat: u32) -> Result<(u32, Duration), KernelError> {
        self.run(osprey_ebpf::PROG_XDP, packet, repeat)
    }

    /// The same on the XDP_PASS no-op (the harness cost to subtract).
    pub fn test_run_noop(&mut self, packet: &[u8], repeat: u32) -> Result<(u32, Duration), KernelError> {
        self.run(osprey_ebpf::PROG_NOOP, packet, repeat)
    }

    fn run(&mut self, name: &str, packet: &[u8], repeat: u32) -> Result<(u32, Duration), KernelError> {
        let prog = self.xdp(name)?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(packet);
        opts.repeat = repeat.max(1);
        let r = prog
            .test_run(opts)
            .map_err(|source| KernelError::Program { what: format!("test run of {name}"), source })?;
        Ok((r.return_value, r.duration))
    }

    /// Benchmark of many active flows without one syscall per packet: runs
    /// the capture program `repeat` times in one `BPF_PROG_TEST_RUN` on
    /// `packet` (untagged Ethernet/IPv4), its IPv4 source rewritten before
    /// each run so that run `i` belongs to flow `(i * 2654435761) & (flows - 1)`
    /// (`flows` is rounded up to a power of two; consecutive runs hit
    /// scattered flows). With `noop`, the same rewrite without the capture
    /// program: the baseline to subtract. Returns ns per run. The
    /// benchmark programs are verified on first use.
    pub fn bench_spread(&mut self, packet: &[u8], flows: u32, repeat: u32, noop: bool) -> Result<Duration, KernelError> {
        if !self.bench_loaded {
            load_prog(&mut self.ebpf, PROG_BENCH_SPREAD)?;
            load_prog(&mut self.ebpf, PROG_BENCH_SPREAD_NOOP)?;
            let fds = [osprey_ebpf::PROG_XDP, osprey_ebpf::PROG_NOOP].map(|name| {
                let prog: Result<&Xdp, _> = self.ebpf.program(name).ok_or(ProgramError::NotLoaded).and_then(|p| p.try_into());
                prog.and_then(|p| p.fd().and_then(|fd| fd.try_clone().map_err(ProgramError::from)))
            });
            let map = self
                .ebpf
                .map_mut(MAP_BENCH_PROGS)
                .ok_or(KernelError::Map { map: MAP_BENCH_PROGS, source: io::Error::other("missing from the object") })?;
            let mut progs: ProgramArray<&mut MapData> = ProgramArray::try_from(map).map_err(map_err(MAP_BENCH_PROGS))?;
            for (i, fd) in fds.into_iter().enumerate() {
                let fd = fd.map_err(|source| KernelError::Program { what: "benchmark program fd".into(), source })?;
                progs.set(i as u32, &fd, 0).map_err(map_err(MAP_BENCH_PROGS))?;
            }
            self.bench_loaded = true;
        }
        let mask = flows.max(1).next_power_of_two() - 1;
        let map = self
            .ebpf
            .map_mut(MAP_BENCH_STATE)
            .ok_or(KernelError::Map { map: MAP_BENCH_STATE, source: io::Error::other("missing from the object") })?;
        let mut state: PerCpuArray<&mut MapData, u64> = PerCpuArray::try_from(map).map_err(map_err(MAP_BENCH_STATE))?;
        // struct osprey_bench_state { u32 mask; u32 i; } on a little-endian host.
        let values = aya::maps::PerCpuValues::try_from(vec![u64::from(mask); self.ncpus]).map_err(|e| KernelError::Map {
            map: MAP_BENCH_STATE,
            source: io::Error::new(e.kind(), e.to_string()),
        })?;
        state.set(0, values, 0).map_err(map_err(MAP_BENCH_STATE))?;
        let name = if noop { PROG_BENCH_SPREAD_NOOP } else { PROG_BENCH_SPREAD };
        Ok(self.run(name, packet, repeat)?.1)
    }

    /// Puts the AF_XDP socket `fd` in the XSKMAP slot of receive queue
    /// `queue`: packets of the configured classes arriving on that queue go
    /// to it from now on.
    pub fn set_xsk(&mut self, queue: u32, fd: std::os::fd::RawFd) -> Result<(), KernelError> {
        let map = self
            .ebpf
            .map_mut(osprey_ebpf::MAP_XSKS)
            .ok_or(KernelError::Map { map: osprey_ebpf::MAP_XSKS, source: io::Error::other("missing from the object") })?;
        let mut xsks: XskMap<&mut MapData> = XskMap::try_from(map).map_err(map_err(osprey_ebpf::MAP_XSKS))?;
        xsks.set(queue, fd, 0).map_err(map_err(osprey_ebpf::MAP_XSKS))
    }

    /// Empties the XSKMAP slot of `queue` (its packets are passed again).
    pub fn clear_xsk(&mut self, queue: u32) -> Result<(), KernelError> {
        let map = self
            .ebpf
            .map_mut(osprey_ebpf::MAP_XSKS)
            .ok_or(KernelError::Map { map: osprey_ebpf::MAP_XSKS, source: io::Error::other("missing from the object") })?;
        let mut xsks: XskMap<&mut MapData> = XskMap::try_from(map).map_err(map_err(osprey_ebpf::MAP_XSKS))?;
        match xsks.unset(queue) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(map_err(osprey_ebpf::MAP_XSKS)(e)),
        }
    }

    /// AF_XDP redirect counters summed over CPUs, indexed by `XSK_CNT_*`.
    pub fn xsk_counters(&self) -> Result<[u64; osprey_ebpf::XSK_CNT_MAX], KernelError> {
        let map = self
            .ebpf
            .map(osprey_ebpf::MAP_XSK_COUNTERS)
            .ok_or(KernelError::Map { map: osprey_ebpf::MAP_XSK_COUNTERS, source: io::Error::other("missing from the object") })?;
        let arr: PerCpuArray<&MapData, XskCounters> = PerCpuArray::try_from(map).map_err(map_err(osprey_ebpf::MAP_XSK_COUNTERS))?;
        let per_cpu = arr.get(&0, 0).map_err(map_err(osprey_ebpf::MAP_XSK_COUNTERS))?;
        let mut out = [0u64; osprey_ebpf::XSK_CNT_MAX];
        for c in per_cpu.iter() {
            for (o, v) in out.iter_mut().zip(c.c.iter()) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// The DNS ring's fd (to wait on it together with other descriptors).
    pub fn dns_ring_fd(&self) -> std::os::fd::RawFd {
        self.dns_ring.as_raw_fd()
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<KernelCounters, KernelError> {
        let per_cpu = self.counters.get(&0, 0).map_err(map_err(osprey_ebpf::MAP_COUNTERS))?;
        let mut out = KernelCounters::default();
        // The clock-cache slots at the end of the struct are not counters: left 0.
        let counted = consts::CLOCK_JIFFIES.min(consts::CLOCK_NS) as usize;
        for c in per_cpu.iter() {
            for (o, v) in out.raw.iter_mut().zip(c.c.iter()).take(counted) {
                *o += v;
            }
        }
        Ok(out)
    }

    /// Flows currently in the maps (IPv4 and IPv6).
    pub fn flow_count(&self) -> Result<usize, KernelError> {
        let mut n = 0;
        sys::lookup_batch::<FlowKey4, FlowVal>(self.flows4.map().fd().as_fd(), self.ncpus, 4096, |_, _| n += 1)
            .map_err(|source| KernelError::Map { map: osprey_ebpf::MAP_FLOWS4, source })?;
        sys::lookup_batch::<FlowKey, FlowVal>(self.flows6.map().fd().as_fd(), self.ncpus, 4096, |_, _| n += 1)
            .map_err(|source| KernelError::Map { map: osprey_ebpf::MAP_FLOWS6, source })?;
        Ok(n)
    }

    /// Every flow in the map as a record (end reason `flush`), without removing anything.
    pub fn snapshot(&self) -> Result<Vec<(FlowKey, FlowRecord)>, KernelError> {
        let off = mono_to_wall_offset();
        let mut out = Vec::new();
        let mut add = |k: FlowKey, slots: &[FlowVal]| {
            if let Some(m) = merge(slots, self.continuations.get(&k).map(|c| c.0)) {
                out.push((k, m.record(&k, EndReason::Flush, off)));
            }
        };
        sys::lookup_batch::<FlowKey4, FlowVal>(self.flows4.map().fd().as_fd(), self.ncpus, 4096, |k, slots| {
            add(k.to_key(), slots)
        })
        .map_err(|source| KernelError::Map { map: osprey_ebpf::MAP_FLOWS4, source })?;
        sys::lookup_batch::<FlowKey, FlowVal>(self.flows6.map().fd().as_fd(), self.ncpus, 4096, |k, slots| add(*k, slots))
            .map_err(|source| KernelError::Map { map: osprey_ebpf::MAP_FLOWS6, source })?;
        Ok(out)
    }

    /// Ended flows: records the kernel ended (from the ring) and flows whose
    /// time is up at the current clock (removed from the map). See the module docs.
    pub fn drain(&mut self) -> Result<Vec<FlowRecord>, KernelError> {
        self.drain_at(monotonic_ns(), false)
    }

    /// Ends every flow (reason `flush`, as at the end of input or at shutdown) and empties the map.
    pub fn flush(&mut self) -> Result<Vec<FlowRecord>, KernelError> {
        self.drain_at(monotonic_ns(), true)
    }

    fn drain_at(&mut self, now: i64, flush: bool) -> Result<Vec<FlowRecord>, KernelError> {
        let off = mono_to_wall_offset();
        let mut out = Vec::new();
        while let Some(item) = self.flow_ring.next() {
            if item.len() < size_of::<FlowEnd>() {
                continue;
            }
            // SAFETY: the kernel writes whole `struct osprey_flow_end`s, which
            // FlowEnd mirrors (layout tests); any bit pattern is valid.
            let e: FlowEnd = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            drop(item);
            self.stats.ring_records += 1;
            let reason = EndReason::from_code(e.reason).unwrap_or(EndReason::Flush);
            if let Some(m) = merge(std::slice::from_ref(&e.val), None) {
                out.push(m.record(&e.key, reason, off));
            }
        }

        let ns = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut sweep = Sweep {
            now,
            flush,
            wall_offset: off,
            idle: ns(self.kcfg.idle_ns),
            active: ns(self.kcfg.active_ns),
            linger: ns(self.kcfg.linger_ns),
            ncpus: self.ncpus,
            continuations: &mut self.continuations,
            stats: &mut self.stats,
            out: &mut out,
        };
        sweep.map::<FlowKey4>(self.flows4.map().fd().as_fd(), osprey_ebpf::MAP_FLOWS4)?;
        sweep.map::<FlowKey>(self.flows6.map().fd().as_fd(), osprey_ebpf::MAP_FLOWS6)?;
        self.continuations.retain(|_, (_, deadline)| *deadline > now);
        if flush {
            self.continuations.clear();
        }
        Ok(out)
    }

    /// Reads up to `max` pending DNS ring records.
    pub fn dns_events(&mut self, max: usize) -> Vec<DnsEvent> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(item) = self.dns_ring.next() else { break };
            // Records are the struct, cut short behind short messages.
            if let Some(ev) = DnsEvent::from_record(&item) {
                out.push(ev);
            }
        }
        self.stats.dns_events += out.len() as u64;
        out
    }

    /// Waits until the DNS ring signals data (a forced wake-up) or `timeout` passes.
    pub fn wait_dns(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd { fd: self.dns_ring.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r > 0) }
    }

    /// Decodes a DNS ring record into a segment record with the offline parser.
    /// `dns_ports` decide which side is the server, as in offline ingest.
    pub fn dns_record(&self, ev: &DnsEvent) -> Result<DnsRecord, DnsError> {
        dns_record(ev, &self.cfg.dns_ports, mono_to_wall_offset())
    }
}

impl Drop for KernelCapture {
    fn drop(&mut self) {
        // Closing the link detaches; the maps and programs go with their fds.
        let _ = self.detach();
    }
}

/// A key type of one of the kernel's flow maps.
trait MapKey: Copy + Default {
    /// The flow's key as records and continuations use it.
    fn flow_key(&self) -> FlowKey;
}

impl MapKey for FlowKey {
    fn flow_key(&self) -> FlowKey {
        *self
    }
}

impl MapKey for FlowKey4 {
    fn flow_key(&self) -> FlowKey {
        self.to_key()
    }
}

/// One expiry sweep over the kernel's flow maps (steps 2 and 3 of the
/// module docs), borrowing what it updates from [`KernelCapture`].
struct Sweep<'a> {
    now: i64,
    flush: bool,
    wall_offset: i64,
    idle: i64,
    active: i64,
    linger: i64,
    ncpus: usize,
    continuations: &'a mut HashMap<FlowKey, (u8, i64)>,
    stats: &'a mut DrainStats,
    out: &'a mut Vec<FlowRecord>,
}

impl Sweep<'_> {
    /// Ends the expired flows of the map `fd` (keys `K`).
    fn map<K: MapKey>(&mut self, fd: BorrowedFd<'_>, name: &'static str) -> Result<(), KernelError> {
        let (now, flush, off, ncpus) = (self.now, self.flush, self.wall_offset, self.ncpus);
        let (idle, active, linger) = (self.idle, self.active, self.linger);
        let mut expired: Vec<(K, FlowKey, Vec<FlowVal>, EndReason)> = Vec::new();
        let conts = &*self.continuations;
        sys::lookup_batch::<K, FlowVal>(fd, ncpus, 4096, |k, slots| {
            let key = k.flow_key();
            let Some(m) = merge(slots, conts.get(&key).map(|c| c.0)) else { return };
            let reason = if flush { Some(EndReason::Flush) } else { m.expiry(now, idle, active, linger) };
            if let Some(r) = reason {
                expired.push((*k, key, slots.to_vec(), r));
            }
        })
        .map_err(|source| KernelError::Map { map: name, source })?;

        let mut fresh = vec![FlowVal::default(); ncpus];
        for (map_key, key, read, reason) in expired {
            let present =
                sys::lookup_and_delete(fd, &map_key, &mut fresh).map_err(|source| KernelError::Map { map: name, source })?;
            if !present {
                continue;
            }
            // Split the slots: same generation = this record; changed = restarted meanwhile.
            let mut ended = vec![FlowVal::default(); ncpus];
            let mut live = vec![FlowVal::default(); ncpus];
            let mut any_live = false;
            for cpu in 0..ncpus {
                if fresh[cpu].first_ns != 0 && fresh[cpu].generation != read[cpu].generation && !flush {
                    live[cpu] = fresh[cpu];
                    any_live = true;
                } else {
                    ended[cpu] = fresh[cpu];
                }
            }
            let forced = self.continuations.remove(&key).map(|c| c.0);
            if let Some(m) = merge(&ended, forced) {
                if reason == EndReason::Active {
                    self.continuations.insert(key, (m.a_initiated, now.saturating_add(idle)));
                }
                self.out.push(m.record(&key, reason, off));
                self.stats.swept += 1;
            }
            if any_live {
                match sys::update_percpu(fd, &map_key, &live, sys::BPF_NOEXIST) {
                    Ok(()) => self.stats.reinserted += 1,
                    Err(_) => {
                        if let Some(m) = merge(&live, None) {
                            self.out.push(m.record(&key, reason, off));
                        }
                        self.stats.split += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Decodes a DNS ring record with [`dns::parse_message`] over the copied bytes.
/// `wall_offset` converts the kernel clock to wall time ([`mono_to_wall_offset`]).
pub fn dns_record(ev: &DnsEvent, dns_ports: &[u16], wall_offset: i64) -> Result<DnsRecord, DnsError> {
    let msg = dns::parse_message(ev.message())?;
    let (src, dst) = (ip_from_bytes(&ev.src), ip_from_bytes(&ev.dst));
    let src_is_server = match (dns_ports.contains(&ev.src_port), dns_ports.contains(&ev.dst_port)) {
        (true, false) => true,
        (false, true) => false,
        _ => msg.is_response,
    };
    let (client_ip, client_port, server_ip, server_port) =
        if src_is_server { (dst, ev.dst_port, src, ev.src_port) } else { (src, ev.src_port, dst, ev.dst_port) };
    let mut rec = msg.into_record(DnsRecordContext {
        ts: ev.ts_ns as i64 + wall_offset,
        client_ip,
        client_port,
        server_ip,
        server_port,
        transport: DnsTransport::Udp,
        frame_len: ev.frame_len,
        latency_ns: None,
    });
    rec.size = u32::from(ev.msg_len);
    Ok(rec)
}

/// A flow's per-CPU slots merged, in initiator orientation.
#[derive(Debug, Clone, Copy)]
struct Merged {
    first: i64,
    last: i64,
    close_ns: i64,
    close_reason: u8,
    a_initiated: u8,
    icmp: u16,
    packets: [u64; 2],
    bytes: [u64; 2],
    flags: [u8; 2],
}

/// Merges non-empty slots. The initiator is that of the earliest slot (or
/// `forced`, for an active-timeout continuation). Slots that disagree about
/// the initiator are turned around before summing.
fn merge(slots: &[FlowVal], forced: Option<u8>) -> Option<Merged> {
    let earliest = slots.iter().filter(|s| s.first_ns != 0).min_by_key(|s| s.first_ns)?;
    let a_init = forced.unwrap_or(earliest.a_initiated);
    let mut m = Merged {
        first: i64::MAX,
        last: i64::MIN,
        close_ns: 0,
        close_reason: 0,
        a_initiated: a_init,
        icmp: earliest.icmp_type_code,
        packets: [0; 2],
        bytes: [0; 2],
        flags: [0; 2],
    };
    let mut fin = 0u8;
    let mut rst_at = i64::MAX;
    let mut fin_close_at = 0i64;
    for s in slots.iter().filter(|s| s.first_ns != 0) {
        let same = s.a_initiated == a_init;
        let (i0, i1) = if same { (0, 1) } else { (1, 0) };
        m.packets[i0] += s.packets[0];
        m.packets[i1] += s.packets[1];
        m.bytes[i0] += s.bytes[0];
        m.bytes[i1] += s.bytes[1];
        m.flags[i0] |= s.flags[0];
        m.flags[i1] |= s.flags[1];
        fin |= if same { s.fin_seen } else { ((s.fin_seen & 1) << 1) | ((s.fin_seen >> 1) & 1) };
        m.first = m.first.min(s.first_ns as i64);
        m.last = m.last.max(s.last_ns as i64);
        if s.close_ns != 0 {
            if u64::from(s.close_reason) == consts::END_RST {
                rst_at = rst_at.min(s.close_ns as i64);
            } else {
                fin_close_at = fin_close_at.max(s.close_ns as i64);
            }
        }
    }
    if rst_at != i64::MAX {
        m.close_ns = rst_at;
        m.close_reason = consts::END_RST as u8;
    } else if fin == 3 {
        // FIN both ways; when the two FINs were seen on different CPUs no
        // slot closed: the later of the slots' last packets is the close time.
        m.close_ns = if fin_close_at != 0 { fin_close_at } else { m.last };
        m.close_reason = consts::END_FIN as u8;
    }
    Some(m)
}

impl Merged {
    /// The merged slots as the offline flow table's state (times on the
    /// kernel clock, plus `wall_offset`), so expiry and records follow the
    /// one definition in `flow.rs`.
    fn state(&self, wall_offset: i64) -> FlowState {
        FlowState {
            ts_start: self.first + wall_offset,
            ts_end: self.last + wall_offset,
            close_ts: if self.close_ns != 0 { self.close_ns + wall_offset } else { 0 },
            close_reason: EndReason::from_code(self.close_reason).unwrap_or(EndReason::Fin),
            a_initiated: self.a_initiated != 0,
            icmp_type_code: self.icmp,
            packets: self.packets,
            bytes: self.bytes,
            flags: self.flags,
            fin_seen: [false; 2],
        }
    }

    /// The offline sweep's rules, in its order (times on the kernel clock).
    fn expiry(&self, now: i64, idle: i64, active: i64, linger: i64) -> Option<EndReason> {
        self.state(0).expiry(now, idle, active, linger)
    }

    fn record(&self, k: &FlowKey, reason: EndReason, wall_offset: i64) -> FlowRecord {
        self.state(wall_offset).to_record(k, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(first: u64, last: u64, a_init: u8, pk: [u64; 2], fin: u8) -> FlowVal {
        FlowVal { first_ns: first, last_ns: last, a_initiated: a_init, packets: pk, bytes: [pk[0] * 60, pk[1] * 60], fin_seen: fin, ..FlowVal::default() }
    }

    #[test]
    fn merge_turns_slots_to_the_earliest_initiator() {
        // CPU0 saw the flow first with a as initiator; CPU1 (later) thought b was.
        let s = [slot(100, 200, 1, [3, 1], 0b01), slot(150, 300, 0, [2, 5], 0b01), FlowVal::default()];
        let m = merge(&s, None).expect("non-empty");
        assert_eq!(m.a_initiated, 1);
        assert_eq!(m.packets, [3 + 5, 1 + 2]);
        assert_eq!((m.first, m.last), (100, 300));
        // FIN from a (CPU0, initiator) and from b (CPU1's initiator): both ways.
        assert_eq!(m.close_reason, consts::END_FIN as u8);
        assert_eq!(m.close_ns, 300);
        assert!(merge(&[FlowVal::default()], None).is_none());
        assert_eq!(merge(&s, Some(0)).expect("x").packets, [1 + 2, 3 + 5]);
    }

    #[test]
    fn expiry_follows_the_offline_order() {
        // first_ns 0 is an empty slot: start at 1.
        let mut m = merge(&[slot(1, 10, 1, [1, 0], 0)], None).expect("x");
        assert_eq!(m.expiry(70, 60, 300, 2), None, "idle is strictly greater");
        assert_eq!(m.expiry(71, 60, 300, 2), Some(EndReason::Idle));
        m.last = 299;
        assert_eq!(m.expiry(300, 60, 300, 2), None);
        assert_eq!(m.expiry(301, 60, 300, 2), Some(EndReason::Active));
        m.close_ns = 290;
        m.close_reason = consts::END_RST as u8;
        assert_eq!(m.expiry(292, 60, 300, 2), None, "linger is strictly greater");
        assert_eq!(m.expiry(293, 60, 300, 2), Some(EndReason::Rst));
    }
}
