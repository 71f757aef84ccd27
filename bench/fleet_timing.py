#!/usr/bin/env python3
"""Fleet mode's timings (SPEC 11) on loopback: one etcd member, three veer instances.

    python3 bench/fleet_timing.py --veer build/veer [--decisions 100] [--keep]

Starts etcd and three instances a, b, c (tests/cluster/fleet_test.py's FleetCase: lease 2s,
evaluate_every 200ms, window 10s, min_requests 20, health checks off, no ejection, no
comparison, latency limits 5 s) and measures:

  1. decision propagation: --decisions `set weight X` (X varying), each on the next instance
     in turn; from just before the command is sent until each of the two others shows
     canary_weight X, polled on a kept admin connection with no sleep (bounded by 2 s)
  2. rollback: weight 100, green answering 500, traffic through all three; from the first
     500 a client sees until every instance shows canary_weight 0 (5 rounds)
  3. leader failover: kill -9 of the leader; from the kill until both survivors name the
     same new leader (5 rounds; the killed instance restarted and rejoined in between)
  4. veer_cluster_report_bytes_total and veer_cluster_etcd_writes_total per instance per
     second over 10 s of traffic

and prints a Markdown table and the command line. A benchmark: no figure fails it; every
wait is bounded. Python standard library only. A failover slower than 2.2 s is noted with
the survivors' "fleet leader" log lines, timed from the kill.

Reading 3: the survivors learn of the kill when etcd deletes the dead leader's keys, at
its lease's expiry (lease after its last keepalive, sent every lease/3: 1.33 to 2 s after
the kill). etcd revokes expired leases in a loop every 500 ms, which adds up to 0.5 s.
"""

import argparse
import json
import os
import shlex
import shutil
import socket
import statistics
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
from fleet_test import FleetCase, Traffic, cl, one_leader, weight  # noqa: E402
from fault_test import metric  # noqa: E402  (on the path once fleet_test is imported)

INSTANCE_NAMES = "abc"


class Admin:
    """A kept connection to one instance's admin socket: one JSON line per command."""

    def __init__(self, v):
        self.v = v
        self.sock = None

    def ask(self, command):
        for attempt in (0, 1):  # a restarted instance: connect again once
            try:
                if self.sock is None:
                    self.sock = socket.socket(socket.AF_UNIX)
                    self.sock.settimeout(2)
                    self.sock.connect(self.v.socket)
                    self.buf = b""
                self.sock.sendall(command.encode() + b"\n")
                while b"\n" not in self.buf:
                    chunk = self.sock.recv(1 << 20)
                    if not chunk:
                        raise OSError("admin socket closed")
                    self.buf += chunk
                line, self.buf = self.buf.split(b"\n", 1)
                return json.loads(line)
            except OSError:
                self.close()
                if attempt:
                    raise

    def status(self):
        return self.ask("status")

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None


def poll(admins, done, timeout):
    """Polls every admin's status in turn, no sleep, until done(status) held for each once
    or `timeout` s passed. {name: monotonic time it was first seen to hold, or None}."""
    seen = {a.v.name: None for a in admins}
    deadline = time.monotonic() + timeout
    while None in seen.values() and time.monotonic() < deadline:
        for a in admins:
            if seen[a.v.name] is None:
                try:
                    st = a.status()
                except (OSError, ValueError):
                    continue
                if done(st):
                    seen[a.v.name] = time.monotonic()
    return seen


def settle(admins, what, done, timeout=10, together=lambda sts: True):
    """Until done(status) holds on every admin and together({name: status}) on all of them
    (polled every 20 ms); False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sts = {a.v.name: a.status() for a in admins}
            if all(done(s) for s in sts.values()) and together(sts):
                return True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    print(f"  warning: {what}: not reached in {timeout}s", file=sys.stderr)
    return False


def ms(s):
    return f"{s * 1000:.0f}"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def leader_lines(v, since_bytes, t_wall):
    """v's "fleet leader" log lines from byte since_bytes on, each as its time after t_wall."""
    out = []
    try:
        with open(v.log_path, "rb") as f:
            f.seek(since_bytes)
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return out
    for ln in lines:
        try:
            e = json.loads(ln)
        except ValueError:
            continue
        if e.get("msg") == "fleet leader":
            t = datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
            out.append(f"{v.name} logs leader {e.get('leader')} at +{(t.timestamp() - t_wall) * 1000:.0f} ms")
    return out


# --------------------------------------------------------------------------- measurements

def decisions(vs, admins, n, notes):
    # One status round trip on a kept connection: the polling's granularity.
    rtt = []
    for _ in range(50):
        t = time.monotonic()
        admins[0].status()
        rtt.append(time.monotonic() - t)
    lat, missed, refused = [], [], 0
    current = weight(admins[0].status())
    for i in range(n):
        x = 1 + (i * 37) % 99
        if x == current:
            x = x % 99 + 1
        who = i % 3
        others = [admins[k] for k in range(3) if k != who]
        t0 = time.monotonic()
        answer = admins[who].ask(f"set weight {x}")
        if answer.get("ok") is not True:
            refused += 1
            notes.append(f"`set weight {x}` on {vs[who].name}: {str(answer)[:160]}")
            continue
        seen = poll(others, lambda s: weight(s) == x, 2.0)
        for name, t1 in seen.items():
            if t1 is None:
                missed.append(f"{x} on {name}")
            else:
                lat.append(t1 - t0)
        current = x
        if None in seen.values():  # let the fleet catch up before the next decision
            settle(admins, f"weight {x} everywhere", lambda s: weight(s) == x, 5)
    if missed:
        notes.append(f"decisions not seen within 2 s: {', '.join(missed[:10])}")
    return lat, statistics.median(rtt), missed, refused


def rollbacks(case, vs, admins, rounds, notes):
    took = []
    for r in range(rounds):
        case.green.fail = False
        admins[r % 3].ask("set weight 100")
        if not settle(admins, "weight 100 everywhere", lambda s: weight(s) == 100):
            notes.append(f"rollback round {r + 1}: weight 100 not reached; skipped")
            continue
        time.sleep(1.0)  # a few evaluations, and the window slice under way (10s/32) ends
        case.green.fail = True
        traffic = Traffic(vs, pause=0.005, limit_s=15).start()
        seen = poll(admins, lambda s: weight(s) == 0, 10.0)
        traffic.stop()
        fails = [t for res in traffic.results.values() for t, status, pool in res if status == 500]
        if None in seen.values() or not fails:
            notes.append(f"rollback round {r + 1}: weight 0 seen {seen}, {len(fails)} 500s")
            continue
        # Traffic records when a request was sent; on loopback its answer follows within a
        # millisecond or so, so the first 500 was seen at most that much later.
        took.append(max(seen.values()) - min(fails))
    case.green.fail = False
    return took


def failovers(case, vs, admins, rounds, notes):
    took = []
    by_name = {v.name: v for v in vs}
    for r in range(rounds):
        sts = {a.v.name: a.status() for a in admins}
        if not one_leader(sts):
            notes.append(f"failover round {r + 1}: no agreed leader: "
                         f"{ {n: cl(s).get('leader') for n, s in sts.items()} }")
            continue
        dead = cl(sts["a"])["leader"]
        victim = by_name[dead]
        survivors = [a for a in admins if a.v is not victim]
        mark = {a.v.name: os.path.getsize(a.v.log_path) for a in survivors}
        t_wall, t0 = time.time(), time.monotonic()
        victim.kill9()
        agreed = None
        deadline = t0 + 10
        while agreed is None and time.monotonic() < deadline:
            try:
                leaders = {cl(a.status()).get("leader") for a in survivors}
            except (OSError, ValueError):
                continue
            if len(leaders) == 1 and leaders.pop() in {a.v.name for a in survivors}:
                agreed = time.monotonic() - t0
        if agreed is None:
            notes.append(f"failover round {r + 1}: no new leader within 10 s of killing {dead}")
        else:
            took.append(agreed)
            if agreed > 2.2:
                lines = [ln for a in survivors for ln in leader_lines(a.v, mark[a.v.name], t_wall)]
                notes.append(f"failover round {r + 1} ({dead} killed) took {agreed * 1000:.0f} ms: "
                             + ("; ".join(lines) or "no \"fleet leader\" line in the survivors' logs"))
        for a in admins:
            if a.v is victim:
                a.close()
        victim.start()  # same config, same state file
        names = set(INSTANCE_NAMES)
        settle(admins, f"{dead} back, three instances live, one leader",
               lambda s: cl(s).get("etcd_up") is True
               and {i.get("instance") for i in cl(s).get("instances", []) if i.get("live")} == names, 15,
               together=one_leader)
    return took


def rates(vs, admins, span=10.0):
    admins[0].ask("set weight 50")
    settle(admins, "weight 50 everywhere", lambda s: weight(s) == 50)
    traffic = Traffic(vs, pause=0.005, limit_s=span + 10).start()
    time.sleep(1.0)
    names = ("veer_cluster_report_bytes_total", "veer_cluster_etcd_writes_total")

    def sample():
        out = {}
        for v in vs:
            m = v.metrics()
            out[v.name] = (time.monotonic(), [metric(m, n) for n in names])
        return out
    before = sample()
    time.sleep(span)
    after = sample()
    traffic.stop()
    leader = cl(admins[0].status()).get("leader")
    got = {}
    for v in vs:
        (t0, a0), (t1, a1) = before[v.name], after[v.name]
        reqs = len(traffic.since(v.name, t0, t1))
        got[v.name] = ((a1[0] - a0[0]) / (t1 - t0), (a1[1] - a0[1]) / (t1 - t0), reqs / (t1 - t0))
    return got, leader


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--veer", required=True)
    ap.add_argument("--decisions", type=int, default=100)
    ap.add_argument("--etcd", help="the etcd binary (default: $VEER_ETCD, PATH, /usr/bin/etcd)")
    ap.add_argument("--etcdctl", help="the etcdctl binary (default: $VEER_ETCDCTL, PATH)")
    ap.add_argument("--keep", action="store_true", help="print and keep the logs' directory")
    opts = ap.parse_args()
    command = shlex.join(["python3"] + sys.argv)
    started = time.monotonic()
    case = FleetCase("timing", opts)
    notes, admins = [], []
    try:
        case.etcd_cluster(1)
        case.upstreams()
        vs = case.fleet(INSTANCE_NAMES)
        case.ready(vs)
        admins = [Admin(v) for v in vs]

        lat, rtt, missed, refused = decisions(vs, admins, opts.decisions, notes)
        rb = rollbacks(case, vs, admins, 5, notes)
        fo = failovers(case, vs, admins, 5, notes)
        per, leader = rates(vs, admins)
    except BaseException:
        opts.keep = True
        raise
    finally:
        for a in admins:
            a.close()
        case.close()
        if opts.keep:
            print(f"Logs kept in {case.tmp}", file=sys.stderr)

    each = lambda xs: ", ".join(ms(x) for x in xs) or "-"  # noqa: E731
    rows = [("measurement", "samples", "p50 ms", "p99 ms", "max ms", "each / notes")]
    if lat:
        rows.append(("decision propagation (`set weight X` on one, seen on the other two)",
                     f"{len(lat)} of {2 * opts.decisions}", ms(pct(lat, 50)), ms(pct(lat, 99)),
                     ms(max(lat)), f"status round trip {rtt * 1e3:.2f} ms (kept connection; the two "
                     f"are polled in turn, so a sample is late by up to ~{2 * rtt * 1e3:.1f} ms); "
                     f"{len(missed)} not seen in 2 s, {refused} refused"))
    rows.append(("rollback (first 500 seen -> canary_weight 0 on all three)", f"{len(rb)} of 5",
                 ms(pct(rb, 50)) if rb else "-", "-", ms(max(rb)) if rb else "-", each(rb)))
    rows.append(("leader failover (kill -9 -> both survivors name one new leader)", f"{len(fo)} of 5",
                 ms(pct(fo, 50)) if fo else "-", "-", ms(max(fo)) if fo else "-",
                 f"{each(fo)} (target < 2200: lease 2 s + evaluate_every 200 ms)"))
    for name, (b, w, rps) in sorted(per.items()):
        rows.append((f"instance {name}{' (leader)' if name == leader else ''}: report bytes/s, "
                     f"etcd writes/s", "10 s", "-", "-", "-",
                     f"{b:.0f} B/s, {w:.1f} writes/s at {rps:.0f} req/s"))
    print("\n| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows[1:]:
        print("| " + " | ".join(r) + " |")
    if notes:
        print("\nNotes:")
        for n in notes:
            print(f"- {n}")
    print(f"\nCommand: `{command}` ({time.monotonic() - started:.0f} s; "
          f"{os.cpu_count()} cores, etcd, three veers and this script on loopback)")
    if not opts.keep:
        shutil.rmtree(case.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
