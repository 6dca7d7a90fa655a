#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the shared real captures (stdlib only).

  python3 fuzz/seed_corpus.py [SHARED_DATA_DIR]   (default: ../shared/data)

- pcap_reader, ingest_bytes: every capture, cut to its first records so that
  each seed stays under 16 KiB (classic pcap is cut record by record; small
  pcapng files are copied whole).
- packet_decode: single frames, prefixed with the selector byte that picks the
  file's link type in fuzz_targets/packet_decode.rs.
- dns_message: UDP payloads to/from port 53/5353/5355 of Ethernet and raw-IP
  captures.
Seeds are named by content hash, so re-running adds nothing twice.
"""

import hashlib
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_SEED = 16 * 1024
# Same order as LINK_TYPES in fuzz_targets/packet_decode.rs.
LINK_TYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 9999]
DNS_PORTS = {53, 5353, 5355}


def put(target: str, data: bytes) -> None:
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_records(data: bytes):
    """(endian, linktype, [(record_header, frame)]) of a classic pcap, or None."""
    if len(data) < 24:
        return None
    magic = struct.unpack_from("<I", data)[0]
    endian = {0xA1B2C3D4: "<", 0xA1B23C4D: "<", 0xD4C3B2A1: ">", 0x4D3CB2A1: ">"}.get(magic)
    if not endian:
        return None
    link = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    recs, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, off + 8)[0]
        if off + 16 + caplen > len(data):
            break
        recs.append((data[off:off + 16], data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return endian, link, recs


def ip_payload(link: int, frame: bytes):
    """The UDP payload of a DNS-port datagram, for Ethernet (with VLAN tags) and raw IP."""
    if link == 1:
        off, et = 12, None
        while off + 2 <= len(frame):
            et = struct.unpack_from(">H", frame, off)[0]
            off += 2
            if et in (0x8100, 0x88A8):
                off += 2
                continue
            break
        l3 = frame[off:]
    elif link in (12, 14, 101, 228, 229):
        l3 = frame
    else:
        return None
    if len(l3) < 20:
        return None
    ver = l3[0] >> 4
    if ver == 4:
        ihl = (l3[0] & 15) * 4
        proto, l4 = l3[9], l3[ihl:]
    elif ver == 6 and len(l3) >= 40:
        proto, l4 = l3[6], l3[40:]
    else:
        return None
    if proto != 17 or len(l4) < 8:
        return None
    sp, dp = struct.unpack_from(">HH", l4)
    if sp in DNS_PORTS or dp in DNS_PORTS:
        return l4[8:]
    return None


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "data"
    files = sorted(p for p in shared.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    if not files:
        sys.exit(f"no captures under {shared}")
    for p in files:
        data = p.read_bytes()
        parsed = pcap_records(data)
        if parsed is None:
            if len(data) <= MAX_SEED:
                put("pcap_reader", data)
                put("ingest_bytes", data)
            continue
        endian, link, recs = parsed
        cut, size = [data[:24]], 24
        for hdr, frame in recs:
            if size + len(hdr) + len(frame) > MAX_SEED:
                break
            cut.append(hdr + frame)
            size += len(hdr) + len(frame)
        seed = b"".join(cut)
        put("pcap_reader", seed)
        put("ingest_bytes", seed)
        sel = LINK_TYPES.index(link) if link in LINK_TYPES else LINK_TYPES.index(9999)
        for _, frame in recs[:20]:
            put("packet_decode", bytes([sel]) + frame)
        n = 0
        for _, frame in recs:
            pl = ip_payload(link, frame)
            if pl:
                put("dns_message", pl)
                n += 1
                if n >= 40:
                    break
    for t in ("pcap_reader", "ingest_bytes", "packet_decode", "dns_message"):
        d = HERE / "corpus" / t
        print(f"{t}: {len(list(d.iterdir())) if d.exists() else 0} seeds")


if __name__ == "__main__":
    main()
