#!/usr/bin/env python3
"""Fleet mode (SPEC 11) over loopback: several veer instances running one release through etcd.

Each case starts its own etcd (tests/cluster/etcd_fixture.py: 1 or 3 members), two scripted
upstreams (blue and green, answering "<pool> <method> <target>"; green answers 500 once the
case says so) and veer instances "a", "b", "c" on free 127.0.0.1 ports, each with its own
listener, admin socket, admin.http, state file and config ([cluster] name "shop", lease 2s,
slo.evaluate_every 200ms), and checks what SPEC 11 promises:

  errors_spread          min_requests 40, weight 100, green failing: 15 requests on a and 15
                         on b hold (each alone and the fleet are under 40); 15 more on c and
                         every instance is rolled back within 2 s, the reason naming error_rate
  commands_reach_all     set weight / start / pause / resume / drain / undrain / promote /
                         rollback given to one instance show on every instance
  leader_killed          kill -9 of the leader at step 2 of [10, 30, 60, 100]: the others
                         agree on a new leader within lease + evaluate_every + 1 s, the
                         rollout goes on to promoted, no step taken twice
  etcd_down              etcd killed mid-rollout: every instance serves, shows etcd_up false
                         and does not advance; green fails: the instances with canary traffic
                         roll back on their own; etcd back: every instance rolled back
  etcd_member_lost       a 3-member etcd loses the member first in every instance's list
                         (made raft leader first): commands still reach all, the leader judges
  simultaneous_start     two instances started together on an empty etcd (twice): one leader
                         that both agree on, one release key
  sticky_everywhere      weight 50, sticky header: 60 keys each land on one pool on all three

Usage:
  tests/cluster/fleet_test.py --veer build/veer [--etcd PATH] [--etcdctl PATH]
                              [--only CASE ...] [--keep]

Prints one line per case (PASS/FAIL, name, time, detail; a failing case adds the tails of
veer's and etcd's logs) and ends with `fleet: N passed, N failed`; exits 1 if any case
failed. Without etcd installed every case fails, unless VEER_ALLOW_SKIP=1: then it prints
"SKIP: etcd not installed" and exits 0. Python standard library only. Every wait is bounded
by a deadline (waits poll; the only fixed waits are the "nothing happens for N s" checks);
every process a case starts is stopped by PID when it ends.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..")
for p in (HERE, TESTS, os.path.join(TESTS, "faults")):
    if p not in sys.path:
        sys.path.insert(0, p)
from loopback import (Failure, free_ports, http_get, log, log_tail, lost_a_port, not_run, port_open,  # noqa: E402
                      run_cases, short_tmpdir, spawn, stop, suite_options, wait_until)
from fault_test import ScriptedUpstream, Veer, check, merged, metric, send_response  # noqa: E402
from etcd_fixture import EtcdCluster, EtcdError, find_binary  # noqa: E402

CLUSTER = "shop"
LEASE_S = 2.0
EVALUATE_S = 0.2


# --------------------------------------------------------------------------- status helpers

def cl(st):
    return st.get("cluster") or {}


def weight(st):
    return float(st.get("canary_weight", -1))


def brief(st):
    if not st:
        return "-"
    c = cl(st)
    names = [i.get("instance") for i in c.get("instances", []) if isinstance(i, dict)]
    return (f"state={st.get('state')} weight={st.get('canary_weight')} step={st.get('step')} "
            f"paused={st.get('paused')} holding={st.get('holding')} leader={c.get('leader')!r} "
            f"etcd_up={c.get('etcd_up')} instances={names}")


def brief_all(sts):
    return "; ".join(f"{name}: {brief(st)}" for name, st in sorted(sts.items())) or "no status answered"


def instance_figures(st, instance, pool):
    """`pool`'s figures in `instance`'s entry of status.cluster.instances, or {}."""
    for item in cl(st).get("instances", []):
        if item.get("instance") == instance:
            return (item.get("pools") or {}).get(pool) or {}
    return {}


def endpoint_drained(st, pool, address):
    for ep in (st.get("pools", {}).get(pool) or {}).get("endpoints", []):
        if ep.get("address") == address:
            return ep.get("drained")
    return None


def one_leader(sts):
    """Every status names the same leader, and it is one of these instances."""
    leaders = {cl(s).get("leader") for s in sts.values()}
    names = {cl(s).get("instance") for s in sts.values()}
    return len(leaders) == 1 and next(iter(leaders)) in names


def wait_fleet(veers, what, each=None, together=None, timeout=10.0, interval=0.05):
    """Polls every veer's status until `each(status)` holds for all of them and
    `together({name: status})` holds; returns the statuses. Fails if a veer exits."""
    deadline = time.monotonic() + timeout
    last = {}
    while True:
        for v in veers:
            if v.proc.poll() is not None:
                raise Failure(f"veer {v.name} exited with {v.proc.returncode} while waiting for {what}")
        sts = {}
        for v in veers:
            try:
                sts[v.name] = v.status()
            except (OSError, ValueError):
                pass
        if sts:
            last = sts
        if len(sts) == len(veers):
            try:
                good = all(each(s) for s in sts.values()) if each else True
                good = good and (together(sts) if together else True)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                good = False
            if good:
                return sts
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what}; last: {brief_all(last)}")
        time.sleep(interval)


def ok(v, command):
    a = v.admin(command)
    check(a.get("ok") is True, f"`{command}` on {v.name} answered {json.dumps(a)[:300]}")
    return a


WEIGHT_CHANGE = re.compile(r"canary weight (\d+(?:\.\d+)?) -> (\d+(?:\.\d+)?)")


def to_weight(event):
    """The weight an event moved the canary to: figures.to_weight, else its reason's
    "canary weight X -> Y"; None when it says neither."""
    fig = event.get("figures") or {}
    if isinstance(fig.get("to_weight"), (int, float)):
        return float(fig["to_weight"])
    m = WEIGHT_CHANGE.search(event.get("reason") or "")
    return float(m.group(2)) if m else None


def gauges(v, *names):
    samples = v.metrics()
    for n in names:
        check(any(s[0] == n for s in samples), f"{v.name}: /metrics has no {n}")
    return {n: metric(samples, n) for n in names}


def burst(v, n, tag, expect_status, expect_pool):
    """n GETs through veer `v`, each on a fresh connection; all must answer as expected."""
    for i in range(n):
        status, body, _ = http_get(v.port, f"/{tag}/{v.name}/{i}")
        pool = body.split(b" ", 1)[0].decode("latin-1")
        check(status == expect_status and pool == expect_pool,
              f"request {i} of {n} through {v.name}: {status} {body[:60]!r}, expected "
              f"{expect_status} from {expect_pool}")


# --------------------------------------------------------------------------- processes

class FleetVeer(Veer):
    """fault_test's Veer with a name and its own config file, one of several in a case."""

    def __init__(self, case, name, cfg):  # noqa: super().__init__ names one veer per case
        self.case = case
        self.name = name
        self.cfg = cfg
        self.port = int(cfg["listener"]["address"].rsplit(":", 1)[1])
        self.admin_port = int(cfg["admin"]["http"].rsplit(":", 1)[1])
        self.socket = cfg["admin"]["socket"]
        self.state = cfg["state"]["path"]
        self.config = os.path.join(case.tmp, f"{os.path.basename(self.socket)[:-5]}.toml")
        self.write_config(cfg)
        self.proc = None
        self.starts = 0
        self.log_path = None

    def launch(self):
        self.starts += 1
        label = f"veer-{os.path.basename(self.config)[:-5]}" + (f"#{self.starts}" if self.starts > 1 else "")
        self.proc = self.case.start(label, [self.case.opts.veer, "--config", self.config])
        self.log_path = self.case.logs[label]
        return self

    def wait_ready(self):
        def ready():
            port_open(self.port)
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(self.socket)
            return True
        wait_until(f"veer {self.name}'s listener and admin socket", ready, 20,
                   [(f"veer {self.name}", self.proc)])
        return self

    def start(self):
        return self.launch().wait_ready()

    def wait_status(self, what, predicate, timeout_s):
        return wait_fleet([self], what, each=predicate, timeout=timeout_s)[self.name]

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


class Traffic:
    """Background GETs through each veer, one thread per instance on a keep-alive
    connection, until stop() (bounded by `limit_s`). Records (time, status or error
    name, first word of the body) per instance."""

    def __init__(self, veers, pause=0.01, limit_s=60):
        self.veers = list(veers)
        self.pause = pause
        self.limit_s = limit_s
        self.results = {v.name: [] for v in self.veers}
        self.active = {v.name: True for v in self.veers}
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        for v in self.veers:
            t = threading.Thread(target=self._run, args=(v,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, v):
        conn = None
        end = time.monotonic() + self.limit_s
        i = 0
        while not self._stop.is_set() and time.monotonic() < end:
            if not self.active[v.name]:
                if conn:
                    conn.close()
                    conn = None
                self._stop.wait(0.02)
                continue
            i += 1
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=5)
                conn.request("GET", f"/bg/{v.name}/{i}")
                r = conn.getresponse()
                body = r.read()
                out = (t0, r.status, body.split(b" ", 1)[0].decode("latin-1"))
                if (r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                out = (t0, type(e).__name__, "")
                if conn:
                    conn.close()
                conn = None
                self._stop.wait(0.05)
            self.results[v.name].append(out)
            self._stop.wait(self.pause)
        if conn:
            conn.close()

    def hold(self, name):
        """No more requests through `name` (the one in flight may still finish)."""
        self.active[name] = False

    def since(self, name, t0, until=None):
        return [r for r in self.results[name] if r[0] >= t0 and (until is None or r[0] < until)]

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(10)


def failed_answers(results):
    return [r for r in results if r[1] != 200]


class FleetCase:
    """One case's temporary directory, etcd, upstreams, veers and traffic."""

    def __init__(self, name, opts):
        self.name = name
        self.opts = opts
        self.tmp = short_tmpdir(f"veer-fleet-{name[:10]}-")
        self.procs = []
        self.logs = {}
        self.scripted = []
        self.traffic = []
        self.etcd = None
        self.blue = self.green = None

    def start(self, name, args):
        p = spawn(name, args, self.tmp, self.logs)
        self.procs.append((name, p))
        return p

    def etcd_cluster(self, size=1):
        self.etcd = EtcdCluster(size, root=self.tmp, etcd=self.opts.etcd, etcdctl=self.opts.etcdctl,
                                keep=True)  # the case removes its directory, logs included
        return self.etcd

    def upstreams(self):
        """blue and green, on ports of their own; `green.fail = True` makes green answer 500."""
        ports = free_ports(2)
        for name, port in zip(("blue", "green"), ports):
            def handler(up, conn, method, target, name=name):
                send_response(conn, 500 if up.fail else 200, f"{name} {method} {target}\n".encode())
                return True
            up = ScriptedUpstream(port, handler)
            up.fail = False
            self.scripted.append(up)
            setattr(self, name, up)
        return self.blue, self.green

    def fleet(self, names="abc", overrides=None, etcd=None, cluster=CLUSTER, start=True):
        """Veer instances `names` sharing the release `cluster`; all are launched before the
        first is waited for. `etcd`: the endpoint list (default: every member, in order)."""
        ports = free_ports(2 * len(names))
        veers = []
        for k, name in enumerate(names):
            listen, admin = ports[2 * k], ports[2 * k + 1]
            base_name = f"{cluster}-{name}"
            base = {
                "listener": {"address": f"127.0.0.1:{listen}", "threads": 1},
                "admin": {"socket": os.path.join(self.tmp, base_name + ".sock"),
                          "http": f"127.0.0.1:{admin}"},
                "pools.blue": {"endpoints": [self.blue.address]},
                "pools.green": {"endpoints": [self.green.address]},
                "split": {"stable": "blue", "canary_weight": 0},
                # No active checks; passive ejection out of reach, so a failing canary is
                # judged on its error rate, not on "every canary endpoint unhealthy".
                "health": {"enabled": False, "eject_after_failures": 1000000},
                "slo": {"window": "10s", "evaluate_every": "200ms", "min_requests": 20,
                        "max_error_rate": 0.05, "max_p95": "5s", "max_p99": "5s",
                        "compare": False},
                "rollout": {"steps": [10, 100], "step_interval": "10m", "bake": "10m"},
                "timeouts": {"drain": "2s"},
                "state": {"path": os.path.join(self.tmp, base_name + "-state.json")},
                "log": {"level": "info"},
                "cluster": {"etcd": list(etcd or self.etcd.endpoints), "name": cluster,
                            "instance": name, "lease": f"{int(LEASE_S)}s"},
            }
            veers.append(FleetVeer(self, name, merged(base, overrides)))
        if start:
            for v in veers:
                v.launch()
            for v in veers:
                v.wait_ready()
        return veers

    def ready(self, veers, timeout=15):
        """Until every instance reaches etcd, sees all of `veers` and names one leader."""
        names = {v.name for v in veers}
        return wait_fleet(
            veers, "the fleet to form (etcd_up, every instance listed, one leader)",
            each=lambda s: cl(s).get("etcd_up") is True and
            names <= {i.get("instance") for i in cl(s).get("instances", [])},
            together=one_leader, timeout=timeout)

    def run_traffic(self, veers, **kw):
        t = Traffic(veers, **kw).start()
        self.traffic.append(t)
        return t

    def log_tail(self, n=10):
        return log_tail(self.logs, n) + (self.etcd.log_tail(6) if self.etcd else "")

    def lost_a_port(self, detail):  # etcd's logs too, below tmp
        return lost_a_port([os.path.join(root, f) for root, _, files in os.walk(self.tmp)
                            for f in files if f.endswith(".log")], detail)

    def close(self):
        for t in self.traffic:
            t.stop()
        stop(self.procs)
        if self.etcd:
            self.etcd.close()
        for up in self.scripted:
            up.close()


# --------------------------------------------------------------------------- cases

def case_errors_spread(c):
    c.etcd_cluster(1)
    c.upstreams()
    vs = c.fleet("abc", {"slo": {"min_requests": 40, "window": "6400ms"}})
    a, b, cc = vs
    c.ready(vs)
    ok(a, "set weight 100")
    wait_fleet(vs, "canary_weight 100 on every instance", each=lambda s: weight(s) == 100, timeout=3)
    # The canary's evidence starts with the first window slice that begins after it got
    # its weight (metrics/window.hpp: slices of window/32, here 200 ms): requests in the
    # slice under way would not count, on one instance as on three.
    time.sleep(0.25)
    c.green.fail = True
    burst(a, 15, "spread", 500, "green")
    burst(b, 15, "spread", 500, "green")

    # The fleet's figures reach every instance: 30 canary requests merged, 15 from each of a, b.
    wait_fleet(vs, "merged green requests 30 (a 15, b 15) in every instance's status",
               each=lambda s: s["pools"]["green"]["requests"] == 30
               and instance_figures(s, "a", "green").get("requests") == 15
               and instance_figures(s, "b", "green").get("requests") == 15,
               timeout=3)
    wait_fleet(vs, "holding on every instance (30 < min_requests 40)",
               each=lambda s: s["holding"] is True, timeout=2)
    # ~1 s, five evaluations: still holding, nothing rolled back.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        for v in vs:
            st = v.status()
            check(st["state"] != "rolled_back" and weight(st) == 100 and st["holding"] is True,
                  f"{v.name} with 30 canary requests in the fleet (< min_requests 40) and 15 or 0 "
                  f"of its own: {brief(st)}")
        time.sleep(0.1)

    burst(cc, 15, "spread", 500, "green")
    t0 = time.monotonic()
    wait_fleet(vs, "rolled_back with canary_weight 0 on every instance within 2 s of the 45th request",
               each=lambda s: s["state"] == "rolled_back" and weight(s) == 0, timeout=2.0)
    took = time.monotonic() - t0
    reasons = []
    for v in vs:
        rb = [e for e in v.events(100) if e.get("kind") == "rollback"]
        check(rb, f"{v.name}: rolled_back but no rollback event")
        reason = rb[-1].get("reason") or ""
        check(rb[-1].get("by") == "judge", f"{v.name}: rollback by {rb[-1].get('by')!r}, expected judge")
        check("error_rate" in reason and "max_error_rate" in reason,
              f"{v.name}: the rollback's reason does not name the error rate: {reason!r}")
        reasons.append(reason)
    return (f"held at 30 of 40 (15 on a, 15 on b); 15 on c: all three rolled back {took:.2f}s later: "
            f"{reasons[0][:80]!r}")


def case_commands_reach_all(c):
    c.etcd_cluster(1)
    c.upstreams()
    vs = c.fleet("abc", {"slo": {"min_requests": 1000000}})
    a, b, cc = vs
    c.ready(vs)
    g = c.green.address
    steps = []

    def command(v, cmd, what, each):
        t0 = time.monotonic()
        ok(v, cmd)
        wait_fleet(vs, f"{what} on every instance after `{cmd}` on {v.name}", each=each, timeout=3)
        steps.append(f"{cmd} on {v.name}: {(time.monotonic() - t0) * 1000:.0f} ms")

    command(cc, "set weight 20", "canary_weight 20", lambda s: weight(s) == 20)
    for v in vs:
        check(any(e.get("kind") == "weight" and e.get("by") == "operator" for e in v.events(50)),
              f"{v.name}: no weight event by operator after `set weight 20` on c")
    command(a, "start", "progressing at step 0, weight 10",
            lambda s: s["state"] == "progressing" and s["step"] == 0 and weight(s) == 10 and not s["paused"])
    command(b, "pause", "paused", lambda s: s["paused"] is True and s["state"] == "progressing")
    command(cc, "resume", "not paused", lambda s: s["paused"] is False and s["state"] == "progressing")
    command(a, f"drain {g}", f"{g} drained", lambda s: endpoint_drained(s, "green", g) is True)
    command(b, f"undrain {g}", f"{g} not drained", lambda s: endpoint_drained(s, "green", g) is False)
    command(cc, "promote", "baking at 100", lambda s: s["state"] == "baking" and weight(s) == 100)
    command(a, "rollback drill", "rolled_back at 0", lambda s: s["state"] == "rolled_back" and weight(s) == 0)
    for v in vs:
        rb = [e for e in v.events(50) if e.get("kind") == "rollback"]
        check(rb and rb[-1].get("by") == "operator",
              f"{v.name}: last rollback event {rb[-1] if rb else None}, expected one by operator")
    return "; ".join(steps)


def case_leader_killed(c):
    c.etcd_cluster(1)
    c.upstreams()
    vs = c.fleet("abc", {"slo": {"min_requests": 5},
                         "rollout": {"steps": [10, 30, 60, 100], "step_interval": "1s", "bake": "1s"}})
    c.ready(vs)
    traffic = c.run_traffic(vs, pause=0.01, limit_s=60)
    ok(vs[0], "start")
    sts = wait_fleet(vs, "step 1 (weight 30) reached", each=lambda s: s["step"] >= 1 and weight(s) >= 30,
                     together=one_leader, timeout=15)
    leader = cl(next(iter(sts.values())))["leader"]
    victim = next(v for v in vs if v.name == leader)
    survivors = [v for v in vs if v is not victim]
    at_kill = brief(sts[leader])
    traffic.hold(victim.name)
    killed_at = time.monotonic()
    victim.kill9()

    # etcd 3.4 expires leases on a 500 ms tick: the takeover can take lease + 0.5 s +
    # evaluate_every (README, fleet Limits); the rest is slack for a loaded CI machine.
    bound = LEASE_S + 0.5 + EVALUATE_S + 1.3
    sts = wait_fleet(survivors, f"a new leader, one of {[v.name for v in survivors]}, that both name",
                     together=one_leader, timeout=bound)
    new_leader = cl(next(iter(sts.values())))["leader"]
    took = time.monotonic() - killed_at
    check(new_leader != leader, f"the survivors still name the killed {leader} leader")

    sts = wait_fleet(survivors, "promoted", each=lambda s: s["state"] == "promoted", timeout=25)
    traffic.stop()
    for v in survivors:
        check(sts[v.name]["stable"] == "green", f"{v.name}: promoted but stable is {sts[v.name]['stable']!r}")
        bad = failed_answers(traffic.results[v.name])
        check(traffic.results[v.name], f"no traffic went through {v.name}")
        check(not bad, f"{len(bad)} of {len(traffic.results[v.name])} healthy requests through {v.name} "
                       f"failed (first: {bad[0][1]})" if bad else "")
        evs = v.events(200)
        moves = [(e.get("kind"), to_weight(e)) for e in evs if e.get("kind") in ("started", "step", "baking")]
        weights = [w for _, w in moves]
        check(sorted(weights) == [10, 30, 60, 100] and len(set(weights)) == 4,
              f"{v.name}: the rollout's moves {moves}, expected each of 10, 30, 60, 100 exactly once")
        promoted = [e for e in evs if e.get("kind") == "promoted"]
        check(len(promoted) == 1, f"{v.name}: {len(promoted)} promoted events")
    # Metrics: one leader of two, etcd up.
    def metrics_settled():
        g = {v.name: gauges(v, "veer_cluster_leader", "veer_cluster_instances", "veer_cluster_etcd_up")
             for v in survivors}
        return (sum(x["veer_cluster_leader"] for x in g.values()) == 1
                and g[new_leader]["veer_cluster_leader"] == 1
                and all(x["veer_cluster_instances"] == 2 and x["veer_cluster_etcd_up"] == 1 for x in g.values())
                and g)
    try:
        g = wait_until("veer_cluster_leader 1 on the new leader only, veer_cluster_instances 2", metrics_settled, 5)
    except Failure as e:
        got = {v.name: gauges(v, "veer_cluster_leader", "veer_cluster_instances", "veer_cluster_etcd_up")
               for v in survivors}
        raise Failure(f"{e}: {got}")
    return (f"killed leader {leader} at {at_kill}; {new_leader} leads {took:.2f}s later (bound {bound:.1f}s); "
            f"promoted; steps 10, 30, 60, 100 once each; "
            f"{sum(len(traffic.results[v.name]) for v in survivors)} requests on the survivors all 200")


def case_etcd_down(c):
    c.etcd_cluster(1)
    c.upstreams()
    vs = c.fleet("abc", {"slo": {"min_requests": 10, "window": "10s"},
                         "rollout": {"steps": [20, 50, 100], "step_interval": "1s", "bake": "10m"}})
    a, b, cc = vs
    c.ready(vs)
    traffic = c.run_traffic(vs, pause=0.01, limit_s=60)
    ok(a, "start")
    wait_fleet(vs, "progressing at weight 20", each=lambda s: s["state"] == "progressing" and weight(s) > 0,
               timeout=3)
    c.etcd.kill(0)
    killed_at = time.monotonic()
    down = wait_fleet(vs, "etcd_up false on every instance", each=lambda s: cl(s).get("etcd_up") is False,
                      timeout=LEASE_S * 2 + 1)
    w0 = {name: weight(st) for name, st in down.items()}
    check(all(st["state"] == "progressing" for st in down.values()), f"etcd down: {brief_all(down)}")

    # Two step intervals with healthy traffic and no etcd: nobody advances.
    held_from = time.monotonic()
    end = held_from + 2.5
    while time.monotonic() < end:
        for v in vs:
            st = v.status()
            check(weight(st) == w0[v.name] and st["state"] == "progressing",
                  f"{v.name} moved without etcd: was at {w0[v.name]}, now {brief(st)}")
        time.sleep(0.1)
    for v in vs:
        check(gauges(v, "veer_cluster_etcd_up")["veer_cluster_etcd_up"] == 0,
              f"{v.name}: veer_cluster_etcd_up is not 0 with etcd down")
    held_to = time.monotonic()
    for v in vs:
        got = traffic.since(v.name, killed_at, held_to)
        bad = failed_answers(got)
        check(len(got) >= 10, f"only {len(got)} requests through {v.name} while etcd was down")
        check(not bad, f"{len(bad)} of {len(got)} requests through {v.name} failed with etcd down "
                       f"(first: {bad[0][1]})" if bad else "")

    # Green breaks; only a and b still get traffic.
    traffic.hold(cc.name)
    time.sleep(0.1)  # c's last request (if one was in flight) answered before green breaks
    c.green.fail = True
    failed_at = time.monotonic()
    wait_fleet([a, b], "a and b rolled back on their own, etcd still down",
               each=lambda s: s["state"] == "rolled_back" and weight(s) == 0 and cl(s).get("etcd_up") is False,
               timeout=6)
    local = time.monotonic() - failed_at
    st = cc.status()
    check(st["state"] == "progressing" and weight(st) == w0[cc.name],
          f"c (no canary traffic since green broke, no etcd) should still be where it was "
          f"({w0[cc.name]}): {brief(st)}")

    c.etcd.start(0)
    back_at = time.monotonic()
    wait_fleet(vs, "every instance rolled back, etcd_up true, one leader",
               each=lambda s: s["state"] == "rolled_back" and weight(s) == 0 and cl(s).get("etcd_up") is True,
               together=one_leader, timeout=LEASE_S * 2 + 6)
    adopted = time.monotonic() - back_at
    traffic.stop()
    rb = [e for e in cc.events(100) if e.get("kind") == "rollback"]
    check(rb, "c adopted rolled_back but shows no rollback event")
    return (f"etcd down: weights {w0} held 2.5 s, all 200; green broke: a, b rolled back alone in {local:.2f}s, "
            f"c stayed at {w0[cc.name]}; etcd back: all rolled back {adopted:.2f}s later "
            f"({rb[-1].get('by')}: {(rb[-1].get('reason') or '')[:60]!r})")


def case_etcd_member_lost(c):
    c.etcd_cluster(3)
    c.upstreams()
    vs = c.fleet("abc", {"slo": {"min_requests": 20}}, etcd=c.etcd.endpoints)  # m0 first everywhere
    a, b, cc = vs
    c.ready(vs)
    try:  # the kill then also costs etcd an election
        c.etcd.move_leader(0)
        raft = "m0 was etcd's raft leader"
    except EtcdError:
        raft = f"m0 could not be made raft leader (leader m{c.etcd.leader_index()})"
    before = cl(a.status()).get("leader")
    c.etcd.kill(0)
    killed_at = time.monotonic()
    c.etcd.wait_healthy([1, 2], timeout=10)
    sts = c.ready(vs, timeout=10)
    leader = cl(sts["a"])["leader"]
    settled = time.monotonic() - killed_at

    ok(b, "set weight 30")
    wait_fleet(vs, "canary_weight 30 on every instance", each=lambda s: weight(s) == 30, timeout=5)
    g = {v.name: gauges(v, "veer_cluster_leader")["veer_cluster_leader"] for v in vs}
    check(sum(g.values()) == 1, f"veer_cluster_leader per instance after m0 was lost: {g}")

    c.green.fail = True
    traffic = c.run_traffic(vs, pause=0.01, limit_s=30)
    t0 = time.monotonic()
    wait_fleet(vs, "every instance rolled back by the judge", each=lambda s: s["state"] == "rolled_back"
               and weight(s) == 0, timeout=10)
    took = time.monotonic() - t0
    traffic.stop()
    rb = [e for e in a.events(100) if e.get("kind") == "rollback"]
    check(rb and rb[-1].get("by") == "judge" and "error_rate" in (rb[-1].get("reason") or ""),
          f"last rollback event {rb[-1] if rb else None}, expected one by the judge naming error_rate")
    return (f"{raft}; killed it: fleet settled {settled:.2f}s later (leader {before} -> {leader}); "
            f"set weight 30 on b reached all; green failing rolled back in {took:.2f}s")


def case_simultaneous_start(c):
    c.etcd_cluster(1)
    c.upstreams()
    report = []
    for cluster in (CLUSTER, CLUSTER + "2"):  # twice, each on an empty prefix
        vs = c.fleet("ab", cluster=cluster)  # both launched before either is waited for
        sts = c.ready(vs, timeout=10)
        leader = cl(sts["a"])["leader"]
        check(leader in ("a", "b"), f"{cluster}: leader {leader!r}")
        for v in vs:
            st = sts[v.name]
            check(cl(st).get("name") == cluster and cl(st).get("instance") == v.name,
                  f"{cluster}: {v.name}'s status.cluster names {cl(st).get('name')!r}/{cl(st).get('instance')!r}")
            check(st["state"] == "idle" and st["stable"] == "blue" and st["canary"] == "green" and weight(st) == 0,
                  f"{cluster}: {v.name} starts from {brief(st)}")
            status, body, _ = http_get(v.admin_port, "/status")
            check(status == 200, f"{v.name}: GET /status answered {status}")
            hc = json.loads(body).get("cluster") or {}
            check(hc.get("instance") == v.name and hc.get("leader") == leader,
                  f"{v.name}: GET /status cluster {json.dumps(hc)[:200]}")

        def gauges_agree():
            g = {v.name: gauges(v, "veer_cluster_leader", "veer_cluster_instances", "veer_cluster_etcd_up")
                 for v in vs}
            return (all(x["veer_cluster_leader"] == (1 if n == leader else 0) for n, x in g.items())
                    and all(x["veer_cluster_instances"] == 2 and x["veer_cluster_etcd_up"] == 1
                            for x in g.values()) and g)
        try:
            wait_until(f"{cluster}: veer_cluster_leader 1 on {leader} only, instances 2, etcd_up 1",
                       gauges_agree, 3)
        except Failure as e:
            raise Failure(f"{e}: " + json.dumps({v.name: gauges(v, "veer_cluster_leader", "veer_cluster_instances",
                                                                 "veer_cluster_etcd_up") for v in vs}))
        keys = [k for k, _ in c.etcd.get_prefix(f"/veer/{cluster}/release")]
        check(keys == [f"/veer/{cluster}/release"],
              f"{cluster}: etcdctl get --prefix /veer/{cluster}/release lists {keys}")
        report.append(f"{cluster}: leader {leader}, one release key")
        for v in vs:
            v.proc.send_signal(signal.SIGTERM)
        for v in vs:
            try:
                v.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise Failure(f"{cluster}: veer {v.name} still running 10 s after SIGTERM")
    return "; ".join(report)


def case_sticky_everywhere(c):
    c.etcd_cluster(1)
    c.upstreams()
    vs = c.fleet("abc", {"split": {"sticky": {"header": "X-User-Id"}}, "slo": {"min_requests": 1000000}})
    c.ready(vs)
    ok(vs[1], "set weight 50")
    wait_fleet(vs, "canary_weight 50 on every instance", each=lambda s: weight(s) == 50, timeout=3)
    rng = random.Random()
    keys = [f"user-{i}-{rng.randrange(1 << 30)}" for i in range(60)]
    split = {"blue": 0, "green": 0}
    for k in keys:
        seen = {}
        for v in vs:
            status, body, _ = http_get(v.port, "/sticky", {"X-User-Id": k})
            check(status == 200, f"{v.name} with X-User-Id {k}: {status} {body[:60]!r}")
            seen[v.name] = body.split(b" ", 1)[0].decode("latin-1")
        check(len(set(seen.values())) == 1, f"X-User-Id {k} lands on different pools: {seen}")
        split[seen["a"]] += 1
    check(split["blue"] and split["green"], f"60 keys at weight 50 all on one pool: {split}")
    return f"60 keys, each on one pool on a, b and c ({split['blue']} blue, {split['green']} green)"


CASES = [
    ("errors_spread", case_errors_spread),
    ("commands_reach_all", case_commands_reach_all),
    ("leader_killed", case_leader_killed),
    ("etcd_down", case_etcd_down),
    ("etcd_member_lost", case_etcd_member_lost),
    ("simultaneous_start", case_simultaneous_start),
    ("sticky_everywhere", case_sticky_everywhere),
]


def main():
    opts = suite_options(
        __doc__, CASES,
        ("--etcd", {"help": "the etcd binary (default: $VEER_ETCD, PATH, /usr/bin/etcd)"}),
        ("--etcdctl", {"help": "the etcdctl binary (default: $VEER_ETCDCTL, PATH, /usr/bin/etcdctl)"}))
    if not os.access(opts.veer, os.X_OK):
        return not_run("fleet", f"{opts.veer} is not an executable")
    if not find_binary("etcd", opts.etcd) or not find_binary("etcdctl", opts.etcdctl):
        return not_run("fleet", "etcd or etcdctl not installed (Debian etcd-server, etcd-client)",
                       skip="etcd not installed")
    t0 = time.monotonic()
    passed, failed = run_cases(CASES, opts, lambda name: FleetCase(name, opts))
    log(f"fleet: {passed} passed, {failed} failed ({time.monotonic() - t0:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
