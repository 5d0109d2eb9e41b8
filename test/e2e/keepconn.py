#!/usr/bin/env python3
"""One TCP connection kept open through a Service: HTTP/1.1 keep-alive
requests (GET /hostname of agnhost netexec) every INTERVAL seconds on the
same socket until STOPFILE exists. Never reconnects: a reset, a close, a
timeout or a response from another backend ends it with a failure.

  keepconn.py VIP PORT STOPFILE PROGRESSFILE [INTERVAL]

PROGRESSFILE holds the number of answered requests (rewritten after each);
the last line on stdout says OK or FAIL and why. Exit 0 only for OK."""
import os
import re
import socket
import sys
import time


def main():
    vip, port, stopfile, progress = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
    t0 = time.time()
    n, slowest, backend, buf = 0, 0.0, None, b""

    def fail(why):
        print(f"FAIL after {n} requests, {time.time() - t0:.1f}s: {why}", flush=True)
        sys.exit(1)

    try:
        s = socket.create_connection((vip, port), timeout=3)
    except OSError as e:
        fail(f"connect to {vip}:{port}: {e}")
    s.settimeout(3)
    local = "%s:%d" % s.getsockname()
    while not os.path.exists(stopfile):
        t = time.time()
        try:
            s.sendall(b"GET /hostname HTTP/1.1\r\nHost: keepconn\r\n\r\n")
            while b"\r\n\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    fail("the connection was closed by the other end")
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if not head.startswith(b"HTTP/1.1 200") or not m:
                fail(f"unexpected response {head[:60]!r}")
            while len(buf) < int(m.group(1)):
                d = s.recv(4096)
                if not d:
                    fail("the connection was closed inside a response")
                buf += d
            body, buf = buf[:int(m.group(1))], buf[int(m.group(1)):]
        except OSError as e:
            fail(f"{e}")
        if backend is None:
            backend = body.decode()
        elif body.decode() != backend:
            fail(f"answered by {body.decode()}, not {backend}: not the same connection")
        n += 1
        slowest = max(slowest, time.time() - t)
        with open(progress + ".tmp", "w") as f:
            f.write(f"{n}\n")
        os.rename(progress + ".tmp", progress)
        time.sleep(interval)
    print(f"OK {n} requests in {time.time() - t0:.1f}s on one connection from {local} to {vip}:{port} "
          f"(backend {backend}), slowest {slowest * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
