#!/usr/bin/env bash
# The flow map alone, per map type (per-CPU hash, hash with atomic adds, LRU
# hash), at 1K/64K/1M active flows and for 64K flows at several capacities:
# ns per `bpftool prog run` repeat, and the same for a no-op that computes the
# key only. Needs root, clang and bpftool. Pins under /sys/fs/bpf/osprey_mapx_*
# and removes them on exit, whatever happens.
#
#   sudo benches/bpf_map_types/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
cleanup() { rm -rf /sys/fs/bpf/osprey_mapx_* "$tmp"; }
trap cleanup EXIT
printf '\0%.0s' $(seq 64) > "$tmp/pkt"

ns() { bpftool prog run pinned "$1" data_in "$tmp/pkt" repeat "$2" 2>&1 | grep -o 'average): [0-9]*' | grep -o '[0-9]*$'; }

case_run() { # name cflags flows
  local name=$1 flags=$2 n=$3 pin=/sys/fs/bpf/osprey_mapx_$1
  clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu $flags -c "$here/maps.bpf.c" -o "$tmp/$name.o"
  bpftool prog loadall "$tmp/$name.o" "$pin"
  local rep=$(( n > 1000000 ? 4000000 : 1000000 ))
  for p in percpu shared lruh; do ns "$pin/$p" $(( n * 2 )) > /dev/null; done   # every flow exists
  for round in 1 2 3; do
    printf '%-28s round %d: noop %3s ns, percpu hash %3s ns, hash+atomics %3s ns, lru hash %3s ns\n' \
      "$name" "$round" "$(ns $pin/noop $rep)" "$(ns $pin/percpu $rep)" "$(ns $pin/shared $rep)" "$(ns $pin/lruh $rep)"
  done
  rm -rf "$pin"
}

uptime
case_run flows1k_cap1m "-DNFLOWS=1024" 1024
case_run flows64k_cap1m "-DNFLOWS=65536" 65536
case_run flows1m_cap1m "-DNFLOWS=1048576" 1048576
case_run flows64k_cap64k "-DNFLOWS=65536 -DN_MAX=65536" 65536
case_run flows64k_cap2m "-DNFLOWS=65536 -DN_MAX=2097152" 65536
case_run flows64k_cap2m_val72 "-DNFLOWS=65536 -DN_MAX=2097152 -DVAL72" 65536
