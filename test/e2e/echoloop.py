#!/usr/bin/python3
"""One long-lived TCP connection that keeps exchanging: reads the backend's
greeting line, then sends a numbered line every INTERVAL seconds and
expects it echoed (the e2e backends run `echo NAME; cat`), until STOPFILE
exists. Never reconnects: a reset, a close, a timeout or a wrong echo ends
it with a failure.

  echoloop.py HOST PORT STOPFILE PROGRESSFILE [INTERVAL]

PROGRESSFILE holds the number of echoed lines (rewritten after each). The
last line on stdout: "OK N BACKEND PEER" (PEER from getpeername) or
"FAIL after N: why". Exit 0 only for OK."""
import os
import socket
import sys
import time


def main():
    host, port, stopfile, progress = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.02
    n = 0

    def fail(why):
        print(f"FAIL after {n}: {why}", flush=True)
        sys.exit(1)

    try:
        s = socket.create_connection((host, port), timeout=3)
        s.settimeout(3)
        f = s.makefile("rwb", buffering=0)
        backend = f.readline().decode().strip()
        peer = "%s:%d" % s.getpeername()
    except OSError as e:
        fail(f"connect to {host}:{port}: {e}")
    while not os.path.exists(stopfile):
        line = f"{n}\n".encode()
        try:
            s.sendall(line)
            got = f.readline()
        except OSError as e:
            fail(str(e))
        if got != line:
            fail(f"echo {got!r}, expected {line!r}")
        n += 1
        with open(progress + ".tmp", "w") as p:
            p.write(f"{n}\n")
        os.rename(progress + ".tmp", progress)
        time.sleep(interval)
    print(f"OK {n} {backend} {peer}", flush=True)


if __name__ == "__main__":
    main()
