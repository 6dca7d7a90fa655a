#!/usr/bin/env python3
"""Groups a `perf record` profile of `osprey ingest pcap` by subsystem (self time).

  perf record -F 2999 -g -o perf.data taskset -c 1 target/release/osprey -q ingest pcap FILE --data DIR
  python3 benches/perf_summary.py perf.data

Python 3.11 standard library only; needs `perf` on PATH.
"""

import collections
import re
import subprocess
import sys

# First match wins; user-space patterns match the symbol, the kernel group takes every [k] sample.
GROUPS = [
    ("FlowTable::sweep", r"FlowTable::sweep"),
    ("flow-table lookup/update", r"FlowTable::observe|HashMap.*get_mut|RawTable.*find|remove_entry|FlowTable::flush|rustc_entry|insert"),
    ("zstd", r"ZSTD|HUF_|HIST_|FSE_"),
    ("DNS parse + query matching", r"dns::|from_utf8|push_base64|matcher"),
    ("Arrow batch building", r"arrow|schema::|flatbuffers"),
    ("pcap record walk", r"CaptureReader|ingest_bytes"),
    ("packet decode", r"packet::|decode_frame"),
    ("per-packet glue", r"Ingestor::packet|PacketDecoder|drain_flows|PartitionedWriter|records::"),
    ("malloc/free/memmove", r"malloc|_int_|free|memmove|memcpy|memset|unlink_chunk|finish_grow|drop_in_place"),
]


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = subprocess.run(
        ["perf", "report", "-i", sys.argv[1], "--no-children", "--sort", "symbol", "--stdio", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    total = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$", line)
        if not m:
            continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
        if kind == "k":
            total["kernel (page faults, file writes, fsync)"] += pct
            continue
        for name, pat in GROUPS:
            if re.search(pat, sym):
                total[name] += pct
                break
        else:
            total["other"] += pct
    for name, pct in total.most_common():
        print(f"{pct:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
