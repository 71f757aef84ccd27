#!/usr/bin/env python3
"""Endpoints by DNS name (SPEC 12) over loopback, resolved through a real DNS server.

Each case starts, in its own temporary directory and on free ports: a dnsmasq (Debian's
dnsmasq-base) answering for `*.test` from a hosts file the case rewrites (SIGHUP re-reads it;
any other .test name is NXDOMAIN), veer-upstream processes listening on 127.0.0.2, 127.0.0.3,
127.0.0.4 or ::1 on one port, and veer with `[dns] servers = ["127.0.0.1:PORT"]` and
`refresh = "200ms"`. It checks what SPEC 12 promises:

  name_stands_for_every_address   blue = ["svc.test:P"] with two A records: status lists both
                                  addresses (with their name), requests reach both; the hosts
                                  file changes (one address gone, one new): the new one joins,
                                  the gone one takes no new requests while its request in flight
                                  still gets its 200; a "dns" event names both; `drain NAME`
                                  drains every address of the name
  failed_refresh_keeps_addresses  the DNS server stops, then answers NXDOMAIN: the addresses stay,
                                  requests are served, veer_dns_failures_total grows, status
                                  shows the error; the name back: the error clears
  ipv6_address                    an AAAA record (::1): the endpoint is "[::1]:P" and serves
  unresolvable_name_is_refused    a name without records: --check-config and start both fail
                                  naming the key and the name; a resolvable one passes
                                  --check-config; a reload adding an unresolvable name is
                                  refused and changes nothing

Usage:
  tests/dns/dns_test.py --veer build/veer --upstream build/veer-upstream [--only CASE ...] [--keep]

Prints one line per case and ends with `dns: N passed, N failed`; exits 1 if any failed.
Without dnsmasq every case fails, unless VEER_ALLOW_SKIP=1: then it prints "SKIP: ..." and
exits 0. Python standard library only; every wait is bounded by a deadline and polls.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (TESTS, os.path.join(TESTS, "faults")):
    if p not in sys.path:
        sys.path.insert(0, p)
from loopback import Failure, free_ports, http_get, log, not_run, run_cases, suite_options, wait_until  # noqa: E402
from fault_test import Case, check, metric  # noqa: E402

REFRESH = "200ms"


def dnsmasq_binary():
    for candidate in (shutil.which("dnsmasq"), "/usr/sbin/dnsmasq"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def tcp_open(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False


class Dns:
    """A dnsmasq answering *.test from a hosts file; set() rewrites it and makes it re-read."""

    def __init__(self, case):
        self.case = case
        self.port = free_ports(1)[0]
        self.hosts = os.path.join(case.tmp, "hosts")
        self.proc = None
        self.set({})
        self.start()

    def start(self):
        self.proc = self.case.start("dnsmasq", [
            dnsmasq_binary(), "--keep-in-foreground", "--conf-file=/dev/null", f"--port={self.port}",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            f"--addn-hosts={self.hosts}", "--local=/test/", "--user=root", "--group=root",
            f"--pid-file={os.path.join(self.case.tmp, 'dnsmasq.pid')}", "--log-facility=-",
            "--log-queries"])
        wait_until("dnsmasq listening", lambda: self._answers(), 10, [("dnsmasq", self.proc)])

    def _answers(self):
        # A query for a name it has no record of: any answer means it is up.
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            s.sendto(q, ("127.0.0.1", self.port))
            try:
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def set(self, records):
        """records: {name: [address, ...]}."""
        tmp = self.hosts + ".new"
        with open(tmp, "w") as f:
            for name, addresses in records.items():
                for a in addresses:
                    f.write(f"{a} {name}\n")
        os.replace(tmp, self.hosts)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)


def upstream(c, name, host, port, *extra):
    p = c.start(f"upstream-{name}", [c.opts.upstream, "--name", name, "--address", host,
                                     "--port", str(port)] + list(extra))
    wait_until(f"veer-upstream {name} on {host}:{port}", lambda: tcp_open(host, port), 10,
               [(name, p)])
    return p


def dns_veer(c, dns, blue, green, overrides=None):
    cfg = {"dns": {"servers": [f"127.0.0.1:{dns.port}"], "refresh": REFRESH}}
    cfg.update(overrides or {})
    return c.veer(blue, green, cfg)


def endpoints(st, pool):
    return sorted(e["address"] for e in st["pools"][pool]["endpoints"])


def served_by(v, n, path="/"):
    seen = {}
    for i in range(n):
        status, body, _ = http_get(v.port, f"{path}{i}")
        check(status == 200, f"request {i}: {status} {body[:80]!r}")
        name = body.split(b" ", 1)[0].decode("latin-1")
        seen[name] = seen.get(name, 0) + 1
    return seen


# --------------------------------------------------------------------------- cases

def case_name_stands_for_every_address(c):
    dns = Dns(c)
    p, gp = free_ports(2)
    dns.set({"svc.test": ["127.0.0.2", "127.0.0.3"]})
    upstream(c, "a", "127.0.0.2", p, "--delay", "600")  # slow: a request is in flight when it goes
    upstream(c, "b", "127.0.0.3", p)
    upstream(c, "c", "127.0.0.4", p)
    upstream(c, "green", "127.0.0.1", gp)
    entry = f"svc.test:{p}"
    v = dns_veer(c, dns, [entry], [f"127.0.0.1:{gp}"])
    st = v.status()
    check(endpoints(st, "blue") == [f"127.0.0.2:{p}", f"127.0.0.3:{p}"], f"blue: {endpoints(st, 'blue')}")
    check(all(e.get("name") == entry for e in st["pools"]["blue"]["endpoints"]), "each carries its name")
    seen = served_by(v, 20)
    check(seen.get("a", 0) > 0 and seen.get("b", 0) > 0, f"both addresses serve: {seen}")

    # A request held at `a` while the name stops listing it.
    held = {}

    def slow():
        conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=10)
        for attempt in range(40):  # until one lands on `a` (p2c over two)
            conn.request("GET", f"/held/{attempt}")
            r = conn.getresponse()
            body = r.read()
            if body.startswith(b"a "):
                held["status"] = r.status
                return
    # One request at a time lands on `a` often enough; the change comes while one waits there.
    t = threading.Thread(target=slow)
    t.start()
    dns.set({"svc.test": ["127.0.0.3", "127.0.0.4"]})
    st = v.wait_status("the new answer applied",
                       lambda s: endpoints(s, "blue") == [f"127.0.0.3:{p}", f"127.0.0.4:{p}"], 10)
    t.join(timeout=30)
    check(held.get("status") == 200, f"the request held at the address that left: {held}")
    seen = served_by(v, 30, "/after/")
    check(seen.get("a", 0) == 0, f"the address that left takes no new requests: {seen}")
    check(seen.get("b", 0) > 0 and seen.get("c", 0) > 0, f"the new address serves: {seen}")
    ev = [e for e in v.events() if e["kind"] == "dns"]
    check(ev, "a dns event")
    f = ev[-1]["figures"]
    check(f.get("joined") == [f"127.0.0.4:{p}"] and f.get("left") == [f"127.0.0.2:{p}"],
          f"the event names who joined and left: {f}")

    r = v.admin(f"drain {entry}")
    check(r.get("ok"), f"drain by name: {r}")
    st = v.status()
    check(all(e["drained"] for e in st["pools"]["blue"]["endpoints"]), "every address of the name drained")
    return f"joined/left applied within one refresh; held request 200; drain by name"


def case_failed_refresh_keeps_addresses(c):
    dns = Dns(c)
    p, gp = free_ports(2)
    dns.set({"svc.test": ["127.0.0.2"]})
    upstream(c, "a", "127.0.0.2", p)
    upstream(c, "green", "127.0.0.1", gp)
    entry = f"svc.test:{p}"
    v = dns_veer(c, dns, [entry], [f"127.0.0.1:{gp}"])
    before = metric(v.metrics(), "veer_dns_failures_total")

    dns.stop()  # loss: no answer at all (timeouts)
    v.wait_status("a failed refresh shown", lambda s: s["dns"]["names"][entry].get("error"), 15)
    check(endpoints(v.status(), "blue") == [f"127.0.0.2:{p}"], "the address is kept")
    check(served_by(v, 5).get("a") == 5, "requests still served")
    lost = metric(v.metrics(), "veer_dns_failures_total")
    check(lost > before, f"veer_dns_failures_total grew: {before} -> {lost}")

    dns.set({})  # NXDOMAIN from a server that is up
    dns.start()
    v.wait_status("NXDOMAIN counted", lambda s: s["dns"]["failures"] > lost + 1, 10)
    st = v.status()
    check(endpoints(st, "blue") == [f"127.0.0.2:{p}"], f"still kept: {endpoints(st, 'blue')}")
    check("not found" in st["dns"]["names"][entry]["error"].lower(), f"error: {st['dns']['names'][entry]}")

    dns.set({"svc.test": ["127.0.0.2"]})
    v.wait_status("the error clears", lambda s: "error" not in s["dns"]["names"][entry], 10)
    check("DNS refresh failed" in v.log_text(), "the failures are logged")
    return f"failures {before} -> {lost} (loss) -> {st['dns']['failures']} (NXDOMAIN); addresses kept"


def case_ipv6_address(c):
    dns = Dns(c)
    p, gp = free_ports(2)
    dns.set({"six.test": ["::1"]})
    upstream(c, "six", "::1", p)
    upstream(c, "green", "127.0.0.1", gp)
    v = dns_veer(c, dns, [f"six.test:{p}"], [f"127.0.0.1:{gp}"])
    check(endpoints(v.status(), "blue") == [f"[::1]:{p}"], f"blue: {endpoints(v.status(), 'blue')}")
    check(served_by(v, 5).get("six") == 5, "served over IPv6")
    return f"[::1]:{p}"


def case_unresolvable_name_is_refused(c):
    dns = Dns(c)
    p, gp = free_ports(2)
    dns.set({"svc.test": ["127.0.0.2"]})
    upstream(c, "a", "127.0.0.2", p)
    upstream(c, "green", "127.0.0.1", gp)
    bad = dns_veer_unstarted(c, dns, [f"nothing.test:{p}"], [f"127.0.0.1:{gp}"])
    out = subprocess.run([c.opts.veer, "--check-config", bad.config], capture_output=True, text=True, timeout=30)
    check(out.returncode == 1, f"--check-config exit {out.returncode}: {out.stdout}{out.stderr}")
    check("pools.blue.endpoints" in out.stderr and "nothing.test" in out.stderr, f"names the key: {out.stderr}")
    start = subprocess.run([c.opts.veer, "--config", bad.config], capture_output=True, text=True, timeout=30)
    check(start.returncode == 1 and "nothing.test" in start.stderr, f"start refused: {start.stderr}")

    good = dns_veer_unstarted(c, dns, [f"svc.test:{p}"], [f"127.0.0.1:{gp}"])
    out = subprocess.run([c.opts.veer, "--check-config", good.config], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, f"a resolvable name passes --check-config: {out.stderr}")
    good.start()
    cfg = dict(good.cfg)
    cfg["pools.blue"] = {"endpoints": [f"svc.test:{p}", f"nothing.test:{p}"]}
    good.write_config(cfg)
    r = good.admin("reload")
    check(not r.get("ok") and "nothing.test" in r.get("error", ""), f"reload refused: {r}")
    check(endpoints(good.status(), "blue") == [f"127.0.0.2:{p}"], "the old endpoints stay")
    return "check-config, start and reload refuse a name without records"


def dns_veer_unstarted(c, dns, blue, green):
    cfg = {"dns": {"servers": [f"127.0.0.1:{dns.port}"], "refresh": REFRESH}}
    return c.veer(blue, green, cfg, start=False)


CASES = [
    ("name_stands_for_every_address", case_name_stands_for_every_address),
    ("failed_refresh_keeps_addresses", case_failed_refresh_keeps_addresses),
    ("ipv6_address", case_ipv6_address),
    ("unresolvable_name_is_refused", case_unresolvable_name_is_refused),
]


def main():
    opts = suite_options(__doc__, CASES, ("--upstream", {"required": True}))
    if not dnsmasq_binary():
        return not_run("dns", "dnsmasq is not installed (scripts/deps test installs dnsmasq-base)",
                       skip="dnsmasq is not installed")
    passed, failed = run_cases(CASES, opts, lambda name: Case(name, opts))
    log(f"dns: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
