#!/usr/bin/env python3
"""Osprey vs. the tools Apache Spot used, side by side on the same files.

  DNS extraction : tshark running Spot's exact field-extraction command
                   vs `osprey ingest pcap` (flows + every DNS message → segments)
  flow aggregation: nfdump's nfpcapd in pcap-file mode (`nfpcapd -r FILE -w DIR`)
                   vs `osprey ingest pcap`

Inputs (built in a temporary directory):
  office  `osprey demo --scale S` capture (synthetic office day: mixed TCP/UDP/DNS,
          24 h of packet time)
  dnsreal the two real DNS-server captures of ../shared/data/pcap/dns that follow
          each other (compactor knot-live 13:54 and nsd-live 13:55, 2016-10-06;
          Ethernet, 39 K packets), repeated with editcap -t time shifts so the
          copies continue each other, until >= --dns-real-packets packets
Every tool reads every input whole. With --tshark-packets N, tshark (and
osprey, for its ratio) read only the first N packets (cut with editcap).

Every measurement: files are read once first (page cache), each tool does one
warm-up run, then --runs timed runs (median reported). Each tool is pinned to
one CPU with `taskset -c CPU` when taskset exists, so "packets/s" is per core.
Wall time and user+sys CPU time (getrusage(RUSAGE_CHILDREN) deltas) are both
reported: on a loaded machine wall time grows while CPU time does not.

Python 3.11 standard library only.

  python3 benches/compare.py [--scale 4] [--runs 3] [--json out.json] [--no-build]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"

# Apache Spot's DNS ingest (spot-ingest/pipelines/dns/worker.py), verbatim,
# with -r FILE prepended and the output sent to /dev/null.
SPOT_TSHARK_FIELDS = [
    "-E", "separator=,", "-E", "header=y", "-E", "occurrence=f", "-T", "fields",
    "-e", "frame.time", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "ip.src", "-e", "ip.dst",
    "-e", "dns.resp.name", "-e", "dns.resp.type", "-e", "dns.resp.class", "-e", "dns.flags.rcode",
    "-e", "dns.a", "dns.flags.response == 1",
]

# Goals from issue 2 (and the peer figures measured there).
GOAL_PPS_PER_CORE = 5_000_000
GOAL_VS_TSHARK = 200
GOAL_VS_NFPCAPD = 10


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Machine state
# ---------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _spin(_: int) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(10_000_000):
        x += i
    return time.perf_counter() - t


def spin_check() -> dict:
    """One Python spin loop alone, then two in parallel (../shared/notes/feasibility.md).

    On an unthrottled 2-vCPU machine both parallel loops take about as long as
    the single one; ~2x means the vCPUs deliver one core between them."""
    one = _spin(0)
    with Pool(2) as p:
        two = p.map(_spin, [0, 1])
    return {"one_s": round(one, 3), "parallel_s": [round(v, 3) for v in two],
            "slowdown": round(max(two) / one, 2)}


def load1() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Waits (up to max_wait s) for the 1-minute load to drop to `limit`; returns it."""
    deadline = time.monotonic() + max_wait
    la = load1()
    while la > limit and time.monotonic() < deadline:
        time.sleep(5)
        la = load1()
    return la


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def count_packets(path: Path) -> int:
    """Packets in a classic pcap (walks record headers), else asks capinfos."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) >= 24:
        magic = struct.unpack_from("<I", data, 0)[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            endian = ""
        if endian:
            n, off, hdr = 0, 24, struct.Struct(endian + "IIII")
            while off + 16 <= len(data):
                caplen = hdr.unpack_from(data, off)[2]
                off += 16 + caplen
                if off > len(data):
                    break
                n += 1
            return n
    out = subprocess.run(["capinfos", "-c", "-M", "-T", "-r", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def read_into_cache(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


# ---------------------------------------------------------------------------
# Running a tool
# ---------------------------------------------------------------------------

@dataclass
class Run:
    wall_s: float
    cpu_s: float
    output: str = field(default="", repr=False, compare=False)


@dataclass
class Result:
    tool: str
    task: str
    input: str
    packets: int
    runs: list[Run] = field(default_factory=list)
    load_before: float = 0.0
    processed: int | None = None

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def cpu_s(self) -> float:
        return statistics.median(r.cpu_s for r in self.runs)

    @property
    def pps_wall(self) -> float:
        return self.packets / self.wall_s

    @property
    def pps_cpu(self) -> float:
        return self.packets / self.cpu_s if self.cpu_s > 0 else float("inf")

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(wall_s=self.wall_s, cpu_s=self.cpu_s, pps_wall=self.pps_wall, pps_cpu=self.pps_cpu)
        return d


def timed(cmd: list[str], capture: bool = False) -> Run:
    """Runs `cmd`; stdout goes to /dev/null unless `capture` (then Run.output has it and stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0,):
        # osprey exits 1 when some input packets/files had problems; that is a
        # completed run. Anything else is a failure.
        if not (cmd_tool(cmd) == "osprey" and proc.returncode == 1):
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run = Run(round(wall, 4), round(cpu, 4))
    if capture:
        run.output = (proc.stdout or b"").decode(errors="replace") + (proc.stderr or b"").decode(errors="replace")
    return run


def packets_seen(tool: str, output: str) -> int | None:
    """The packet count a tool reports (osprey's summary, nfpcapd's "Processed:")."""
    pat = {"osprey": r"^\s*packets\s+(\d+)", "nfpcapd": r"Total: Processed:\s*(\d+)"}.get(tool)
    m = re.search(pat, output, re.M) if pat else None
    return int(m.group(1)) if m else None


def cmd_tool(cmd: list[str]) -> str:
    for c in cmd:
        name = os.path.basename(c)
        if name in ("osprey", "tshark", "nfpcapd"):
            return name
    return "?"


class Bench:
    def __init__(self, args, work: Path, osprey: Path):
        self.args = args
        self.work = work
        self.osprey = osprey
        self.pin = ["taskset", "-c", str(args.cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > args.cpu else []
        self.results: list[Result] = []

    def _fresh(self, name: str) -> Path:
        d = self.work / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def command(self, tool: str, path: Path) -> list[str]:
        if tool == "osprey":
            return self.pin + [str(self.osprey), "ingest", "pcap", str(path), "--data", str(self.work / "out-osprey")]
        if tool == "tshark":
            return self.pin + ["tshark", "-r", str(path)] + SPOT_TSHARK_FIELDS
        if tool == "nfpcapd":
            return self.pin + ["nfpcapd", "-r", str(path), "-w", str(self.work / "out-nfpcapd")]
        raise ValueError(tool)

    def measure(self, tool: str, task: str, label: str, path: Path, packets: int, runs: int) -> Result:
        out_dir = {"osprey": "out-osprey", "nfpcapd": "out-nfpcapd"}.get(tool)
        cmd = self.command(tool, path)
        read_into_cache([path])
        la = wait_for_quiet(self.args.max_load, self.args.max_wait)
        log(f"  {tool:<8} {label:<10} {packets:>9} packets  (load {la:.2f}) warm-up...")
        if out_dir:
            self._fresh(out_dir)
        warm = timed(cmd, capture=tool != "tshark")
        seen = packets_seen(tool, warm.output)
        if seen is not None and seen != packets:
            log(f"  WARNING: {tool} processed {seen} of {packets} packets of {path.name}")
        res = Result(tool, task, label, packets, load_before=round(la, 2), processed=seen)
        for _ in range(runs):
            if out_dir:
                self._fresh(out_dir)
            res.runs.append(timed(cmd))
        log(f"           wall {res.wall_s:.3f} s  cpu {res.cpu_s:.3f} s  ->  {res.pps_wall / 1e6:.3f} M packets/s")
        self.results.append(res)
        return res


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def build_osprey(no_build: bool, given: Path | None) -> Path:
    if given:
        return given.resolve()
    exe = REPO / "target" / "release" / "osprey"
    if no_build and exe.exists():
        return exe
    log("building osprey (cargo build --release -p osprey) ...")
    subprocess.run(["cargo", "build", "--release", "-p", "osprey"], cwd=REPO, check=True)
    return exe


def make_office(osprey: Path, work: Path, scale: float) -> Path:
    d = work / "demo"
    log(f"generating the office capture: osprey demo --scale {scale} ...")
    subprocess.run([str(osprey), "-q", "demo", "--data", str(d), "--scale", str(scale)], check=True, stdout=subprocess.DEVNULL)
    return d / "capture" / "office-day.pcap"


DNS_REAL = ["compactor__knot-live.raw.pcap", "compactor__nsd-live.raw.pcap"]


def make_dns_real(work: Path, min_packets: int) -> Path | None:
    d = SHARED / "pcap" / "dns"
    src = [d / n for n in DNS_REAL]
    if not all(p.exists() for p in src) or not shutil.which("mergecap") or not shutil.which("editcap"):
        log(f"dnsreal input skipped: needs {', '.join(DNS_REAL)} in {d} and mergecap/editcap")
        return None
    once = work / "dns-once.pcap"
    subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", str(once)] + [str(p) for p in src], check=True)
    n = count_packets(once)
    info = subprocess.run(["capinfos", "-T", "-r", "-u", str(once)], capture_output=True, text=True, check=True)
    span = float(info.stdout.split("\t")[-1]) + 1.0  # seconds, plus a gap between copies
    reps = max(1, -(-min_packets // max(n, 1)))
    parts = []
    for i in range(reps):
        part = work / f"dns-part{i}.pcap"
        subprocess.run(["editcap", "-F", "pcap", "-t", f"{i * span:.6f}", str(once), str(part)], check=True)
        parts.append(str(part))
    out = work / "dns-real.pcap"
    subprocess.run(["mergecap", "-a", "-F", "pcap", "-w", str(out)] + parts, check=True)
    for p in parts:
        os.unlink(p)
    return out


def cut(path: Path, packets: int, out: Path) -> Path:
    subprocess.run(["editcap", "-r", str(path), str(out), f"1-{packets}"], check=True)
    return out


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def fmt_rate(pps: float) -> str:
    return f"{pps / 1e6:.3f} M" if pps >= 1e6 else f"{pps / 1e3:.1f} K"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=4.0, help="osprey demo --scale for the office capture (default 4)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool and input (median reported)")
    ap.add_argument("--tshark-runs", type=int, default=1, help="timed tshark runs (it is slow)")
    ap.add_argument("--tshark-packets", type=int, default=0, help="give tshark only the first N packets of each input (0: all)")
    ap.add_argument("--dns-real-packets", type=int, default=500_000, help="replicate the real DNS captures to this many packets")
    ap.add_argument("--cpu", type=int, default=1, help="CPU to pin every tool to (taskset -c)")
    ap.add_argument("--max-load", type=float, default=1.5, help="wait for the 1-min load to drop below this before each measurement")
    ap.add_argument("--max-wait", type=float, default=120, help="...but wait at most this many seconds")
    ap.add_argument("--no-build", action="store_true", help="use target/release/osprey as it is, if present")
    ap.add_argument("--osprey", type=Path, help="use this osprey binary (e.g. a copy that a concurrent build cannot replace)")
    ap.add_argument("--skip", action="append", default=[], choices=["tshark", "nfpcapd"], help="leave a peer tool out")
    ap.add_argument("--json", type=Path, help="also write all results here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    missing = [t for t in ("tshark", "nfpcapd", "editcap", "mergecap") if not shutil.which(t)]
    if missing:
        log(f"missing: {', '.join(missing)}  (Debian: apt-get install -y tshark nfdump)")
        for t in ("tshark", "nfpcapd"):
            if t in missing and t not in args.skip:
                args.skip.append(t)

    osprey = build_osprey(args.no_build, args.osprey)
    machine = {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "osprey": subprocess.run([str(osprey), "--version"], capture_output=True, text=True).stdout.strip(),
        "tshark": (subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.splitlines() or ["?"])[0]
        if "tshark" not in args.skip else None,
        "nfdump": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "nfdump"], capture_output=True, text=True).stdout
        if shutil.which("dpkg-query") else None,
        "load_at_start": os.getloadavg(),
    }
    log(f"machine: {machine['nproc']} x {machine['cpu']}, kernel {machine['kernel']}, load {machine['load_at_start']}")
    spin = spin_check()
    machine["spin_check"] = spin
    log(f"spin check: one loop {spin['one_s']} s, two in parallel {spin['parallel_s']} s (slowdown x{spin['slowdown']};"
        f" ~1.0 normal, ~2.0 = vCPUs throttled to one core)")

    work = Path(tempfile.mkdtemp(prefix="osprey-compare-"))
    try:
        b = Bench(args, work, osprey)
        log(f"pinning: {' '.join(b.pin) or 'none (taskset missing or one CPU)'}; work dir {work}")

        office = make_office(osprey, work, args.scale)
        inputs = {"office": office}
        dns_real = make_dns_real(work, args.dns_real_packets)
        if dns_real:
            inputs["dnsreal"] = dns_real
        counts = {k: count_packets(v) for k, v in inputs.items()}
        sizes = {k: v.stat().st_size for k, v in inputs.items()}
        for k in inputs:
            log(f"input {k}: {inputs[k]}  {counts[k]} packets, {sizes[k] / 1e6:.1f} MB")

        # Flow aggregation (and the overall per-core rate): whole inputs.
        for k, path in inputs.items():
            b.measure("osprey", "ingest", k, path, counts[k], args.runs)
            if "nfpcapd" not in args.skip:
                b.measure("nfpcapd", "flows", k, path, counts[k], args.runs)

        # DNS extraction: tshark on a cut of each input, osprey on the same cut.
        if "tshark" not in args.skip:
            for k, path in inputs.items():
                n = min(args.tshark_packets or counts[k], counts[k])
                c = cut(path, n, work / f"{k}-cut{path.suffix}") if n < counts[k] else path
                label = f"{k}-cut" if n < counts[k] else k
                if label != k:
                    b.measure("osprey", "ingest", label, c, n, args.runs)
                b.measure("tshark", "dns", label, c, n, args.tshark_runs)

        # Report.
        print()
        print(f"machine: {machine['nproc']} x {machine['cpu']}, kernel {machine['kernel']}, {machine['date']}")
        print(f"spin check slowdown x{spin['slowdown']} (one {spin['one_s']} s, parallel {spin['parallel_s']} s)")
        print(f"pinned with: {' '.join(b.pin) or 'nothing'} (osprey ingests one file on one thread)")
        print()
        print(f"{'tool':<8} {'input':<12} {'packets':>9} {'wall s':>8} {'cpu s':>8} {'pkts/s wall':>12} {'pkts/s cpu':>12} {'load':>5}")
        for r in b.results:
            print(f"{r.tool:<8} {r.input:<12} {r.packets:>9} {r.wall_s:>8.3f} {r.cpu_s:>8.3f} "
                  f"{fmt_rate(r.pps_wall):>12} {fmt_rate(r.pps_cpu):>12} {r.load_before:>5.2f}")
        print()

        def find(tool: str, inp: str) -> Result | None:
            return next((r for r in b.results if r.tool == tool and r.input == inp), None)

        ratios = []
        for r in b.results:
            if r.tool == "osprey":
                continue
            o = find("osprey", r.input)
            if not o:
                continue
            goal = GOAL_VS_TSHARK if r.tool == "tshark" else GOAL_VS_NFPCAPD
            rw, rc = o.pps_wall / r.pps_wall, o.pps_cpu / r.pps_cpu
            ratios.append({"peer": r.tool, "input": r.input, "ratio_wall": rw, "ratio_cpu": rc, "goal": goal})
            print(f"osprey/{r.tool:<8} on {r.input:<12} x{rw:8.1f} wall  x{rc:8.1f} cpu   (goal >= x{goal}: "
                  f"{'met' if rw >= goal else 'NOT met'})")
        for r in b.results:
            if r.tool == "osprey" and r.input in inputs:
                print(f"osprey per core on {r.input:<10} {fmt_rate(r.pps_wall)} packets/s wall, {fmt_rate(r.pps_cpu)} per CPU-second "
                      f"(goal >= 5 M: {'met' if r.pps_wall >= GOAL_PPS_PER_CORE else 'NOT met'})")
        if args.json:
            args.json.write_text(json.dumps({"machine": machine, "inputs": {k: {"path": str(v), "packets": counts[k],
                                 "bytes": sizes[k]} for k, v in inputs.items()},
                                 "results": [r.as_dict() for r in b.results], "ratios": ratios}, indent=2))
            log(f"wrote {args.json}")
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
