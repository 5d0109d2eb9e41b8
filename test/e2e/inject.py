#!/usr/bin/python3
"""Crafted packets for the datapath trust tests (test_datapath_trust.sh).

  inject.py vxlan NODE_IP VNI INNER_SRC INNER_DST DPORT COUNT [PAD]
      COUNT VXLAN packets, as a plain UDP socket sends them, to NODE_IP's
      VXLAN port: each wraps an inner Ethernet/IPv4/UDP datagram
      INNER_SRC -> INNER_DST:DPORT, payload "injected N". What a pod or any
      host can build: no privilege needed. PAD zero bytes after the inner
      packet (IP drops them on receive) make the outer packet longer, e.g.
      long enough to leave in fragments.
  inject.py raw SRC DST DPORT COUNT
      COUNT UDP datagrams SRC -> DST:DPORT through a raw socket (a forged
      source, routed by the sender's own table), payload "injected N".
"""
import socket
import struct
import sys

VXLAN_PORT = 8472
IP_MTU_DISCOVER = 10    # <linux/in.h>; not every Python names it
IP_PMTUDISC_DONT = 0    # leave DF off: a long datagram leaves in fragments


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp(src, dst, dport, payload):
    """An IPv4 header (checksum set) and a UDP datagram without checksum."""
    udp = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1234, 0, 64, socket.IPPROTO_UDP, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + udp


def vxlan(node_ip, vni, inner_src, inner_dst, dport, count, pad):
    eth = bytes.fromhex("02aabbccddee021122334455") + struct.pack("!H", 0x0800)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    for i in range(count):
        inner = ipv4_udp(inner_src, inner_dst, dport, b"injected %d\n" % i)
        s.sendto(struct.pack("!II", 0x08000000, vni << 8) + eth + inner + b"\0" * pad, (node_ip, VXLAN_PORT))


def raw(src, dst, dport, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for i in range(count):
        s.sendto(ipv4_udp(src, dst, dport, b"injected %d\n" % i), (dst, 0))


def main(argv):
    if len(argv) in (8, 9) and argv[1] == "vxlan":
        vxlan(argv[2], int(argv[3]), argv[4], argv[5], int(argv[6]), int(argv[7]), int(argv[8]) if len(argv) == 9 else 0)
    elif len(argv) == 6 and argv[1] == "raw":
        raw(argv[2], argv[3], int(argv[4]), int(argv[5]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
