#!/usr/bin/python3
"""Reads what test_k8s_services.sh recorded while it scaled a Deployment and
reports, for one service frontend (VIP:PORT/tcp):

  - the delay from each change of the EndpointSlice's ready set (as a
    `kubectl get --watch` saw it) to each node's datapath holding exactly that
    set (as `podwirectl -o json services`, polled in a loop, saw it);
  - connections that reached a deleted pod although the client's node had
    already dropped that pod from its map.

  k8s_slicemap.py DIR VIP PORT SINCE DELETED

DIR holds slices.log ("T SLICE IP..." per watch event), map-N.log ("T JSON"
per poll of node N) and conns-N.log ("T RESPONSE_JSON" per connection made
from node N's client, T when it started). SINCE: the epoch time before the
first scale (the watch's initial listing comes before it). DELETED: the pods
scaled away, "name=ip,name=ip". Prints key=value lines for the test to check
and a "# slice->map" line.
"""
import json
import os
import statistics
import sys


def read_lines(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        return []


def slice_events(path, since):
    """[(t, frozenset(ready ips))] after `since`, consecutive duplicates dropped."""
    per_slice, events = {}, []
    for line in read_lines(path):
        parts = line.split()
        t, name, ips = float(parts[0]), parts[1], frozenset(parts[2:])
        per_slice[name] = ips
        ready = frozenset().union(*per_slice.values())
        if t < since:
            events = [(t, ready)]   # the state before the first scale
        elif not events or events[-1][1] != ready:
            events.append((t, ready))
    return events


def map_polls(path, vip, port):
    """[(t, frozenset(active backend ips))] of the frontend, per poll."""
    polls = []
    for line in read_lines(path):
        t, _, doc = line.partition(" ")
        try:
            services = json.loads(doc)
        except ValueError:
            continue   # a poll cut short (the agent busy, the test stopping)
        ips = frozenset()
        for s in services:
            if s.get("vip") == vip and s.get("port") == port and s.get("protocol") == "tcp":
                ips = frozenset(b["ip"] for b in s["backends"] if b.get("state") == "active")
        polls.append((float(t), ips))
    return polls


def delays(events, polls):
    """Seconds from each slice change to the first poll holding it; None when
    the map never held it (a later change superseded it between two polls)."""
    out = []
    for i in range(1, len(events)):
        t_prev, (t, ready) = events[i - 1][0], events[i]
        hit = next((pt for pt, ips in polls if pt > t_prev and ips == ready), None)
        # A poll may see the change before kubectl prints it (both watch the
        # same API server): that counts as no delay.
        out.append(None if hit is None else max(0.0, hit - t))
    return out


def removal_time(polls, ip, since):
    """When the map dropped ip for good: the first poll after the last that held it."""
    last = max((i for i, (pt, ips) in enumerate(polls) if ip in ips), default=-1)
    later = [pt for pt, _ in polls[last + 1:] if pt >= since]
    return later[0] if later else None


def slice_removal(events, ip):
    """When the EndpointSlice stopped listing ip as ready, None if it never did."""
    held = False
    for t, ready in events:
        if ip in ready:
            held = True
        elif held:
            return t
    return None


def main():
    d, vip, port, since = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    deleted = dict(kv.split("=", 1) for kv in sys.argv[5].split(",") if kv)
    events = slice_events(os.path.join(d, "slices.log"), since)
    nodes = sorted(f[4:-4] for f in os.listdir(d) if f.startswith("map-") and f.endswith(".log"))

    all_delays, superseded, intervals, violations = [], 0, [], []
    conns = errors = early = 0
    unready = {name: slice_removal(events, ip) for name, ip in deleted.items()}
    for n in nodes:
        polls = map_polls(os.path.join(d, f"map-{n}.log"), vip, port)
        intervals += [b[0] - a[0] for a, b in zip(polls, polls[1:])]
        for dl in delays(events, polls):
            if dl is None:
                superseded += 1
            else:
                all_delays.append(dl)
        gone = {name: removal_time(polls, ip, since) for name, ip in deleted.items()}
        for line in read_lines(os.path.join(d, f"conns-{n}.log")):
            t, _, doc = line.partition(" ")
            conns += 1
            try:
                reply = json.loads(doc)
            except ValueError:
                reply = {}
            host = (reply.get("responses") or [None])[0]
            if host is None:
                errors += 1
            elif host in gone and gone[host] is not None and float(t) > gone[host]:
                violations.append(f"node{n}:{host}@+{float(t) - gone[host]:.3f}s")
            elif host in unready and unready[host] is not None and float(t) > unready[host]:
                early += 1   # the slice had changed, the client's map not yet

    ms = sorted(x * 1000 for x in all_delays)
    poll_ms = statistics.median(intervals) * 1000 if intervals else 0
    if ms:
        print(f"# slice->map: {len(events) - 1} EndpointSlice changes x {len(nodes)} nodes = {len(ms)} samples"
              f" ({superseded} superseded before a poll): p50 {statistics.median(ms):.0f} ms,"
              f" max {ms[-1]:.0f} ms (kubectl watch to podwirectl poll; poll every ~{poll_ms:.0f} ms)")
    print(f"changes={len(events) - 1}")
    print(f"samples={len(ms)}")
    print(f"conns={conns}")
    print(f"errors={errors}")
    print(f"between_slice_and_map={early}")
    more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
    print(f"violations={' '.join(violations[:5]) + more if violations else 'none'}")


if __name__ == "__main__":
    main()
