#!/usr/bin/python3
"""Test client for socket load balancing: what the application sees.

  sockclient.py tcp HOST PORT            connects; prints "GREETING PEER" (PEER from
                                         getpeername, as ip:port) or "error:ERRNO_NAME"
  sockclient.py udp HOST PORT            unconnected: sendto, recvfrom; prints "REPLY SOURCE"
  sockclient.py udp-connected HOST PORT  connect, send, recvfrom; prints "REPLY SOURCE PEER"
"""
import errno
import socket
import sys


def fmt(addr):
    return "%s:%d" % addr


def err(e):
    return "error:" + errno.errorcode.get(e.errno, str(e.errno))


def tcp(host, port):
    try:
        s = socket.create_connection((host, port), timeout=3)
    except OSError as e:
        return err(e)
    s.settimeout(3)
    greeting = s.recv(64).decode().strip()
    peer = s.getpeername()
    s.close()
    return "%s %s" % (greeting, fmt(peer))


def udp(host, port, connected):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        if connected:
            s.connect((host, port))
        for _ in range(3):
            if connected:
                s.send(b"hello\n")
            else:
                s.sendto(b"hello\n", (host, port))
            try:
                data, src = s.recvfrom(256)
            except socket.timeout:
                continue
            out = "%s %s" % (data.decode().strip(), fmt(src))
            return out + (" " + fmt(s.getpeername()) if connected else "")
    except OSError as e:
        return err(e)
    return "timeout"


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "tcp":
        print(tcp(host, port))
    elif mode in ("udp", "udp-connected"):
        print(udp(host, port, mode == "udp-connected"))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
