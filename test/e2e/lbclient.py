#!/usr/bin/python3
"""Test client for service load balancing. Every backend server greets a new
connection with its name and then echoes what it receives.

  lbclient.py spread HOST PORT N          N new connections; prints {"name": count}
  lbclient.py hold HOST PORT N TRIGGER    opens N connections, prints their backends,
                                          waits for the file TRIGGER, then checks each
                                          connection still echoes; prints a JSON report
  lbclient.py udp HOST PORT               one UDP request; prints the reply
  lbclient.py udp-connected HOST PORT     the same from a connected socket, as resolvers
                                          do: prints the reply, "refused" (an ICMP
                                          port unreachable reached it) or "timeout"
"""
import json
import os
import socket
import sys
import time


def greet(sock):
    sock.settimeout(3)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def connect(host, port):
    s = socket.create_connection((host, port), timeout=3)
    return s, greet(s)


def spread(host, port, n):
    counts = {}
    for _ in range(n):
        try:
            s, name = connect(host, port)
            s.close()
        except OSError as e:
            name = "error:" + type(e).__name__
        counts[name] = counts.get(name, 0) + 1
    print(json.dumps(counts))


def hold(host, port, n, trigger):
    conns = [connect(host, port) for _ in range(n)]
    print(json.dumps({"backends": [name for _, name in conns]}), flush=True)
    deadline = time.time() + 60
    while not os.path.exists(trigger) and time.time() < deadline:
        time.sleep(0.05)
    alive = []
    for s, name in conns:
        try:
            s.sendall(b"ping\n")
            alive.append(greet(s) == "ping")
        except OSError:
            alive.append(False)
        s.close()
    print(json.dumps({"alive": alive}))


def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    for _ in range(3):
        s.sendto(b"hello\n", (host, port))
        try:
            print(s.recv(256).decode().strip())
            return
        except socket.timeout:
            continue
    print("timeout")


def udp_connected(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        # Through socket LB a service without backends refuses connect()
        # itself; per packet, the ICMP error makes recv() fail.
        s.connect((host, port))
        s.send(b"hello\n")
        print(s.recv(256).decode().strip())
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("timeout")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "spread":
        spread(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "udp":
        udp(sys.argv[2], int(sys.argv[3]))
    elif cmd == "udp-connected":
        udp_connected(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
