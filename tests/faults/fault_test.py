#!/usr/bin/env python3
"""Fault-injection suite for veer over loopback: what happens when things go wrong.

Each case starts its own veer-upstream processes (or a scripted upstream thread in this
file) and its own veer on free 127.0.0.1 ports, with a config written into its own
temporary directory, injects one fault and checks what SPEC.md (sections 3-7) promises:

  upstream_stops_answering   the canary is SIGSTOPped: 504 at the upstream_response
                             deadline (no hang), then an automatic rollback
  reload_under_load          wrk through veer while 50 reloads alternate two configs:
                             no error, no refused connection, every reload ok
  sigterm_with_20_in_flight  SIGTERM with 20 requests held at the upstream: all 20 get
                             200 and veer exits 0 within timeouts.drain
  kill9_state_changes        kill -9 during 1,000 `set weight` commands: the state file
                             is valid and restores the last acknowledged weight (x3)
  slowloris                  500 connections trickling a head byte every 100 ms are cut
                             after header_read while a normal client is still served
  over_max_connections       connections over limits.max_connections are closed at
                             once; the admin socket and health checks keep working
  upstream_reset_mid_body    an upstream resets after 100 KB of a 1 MB body: the client
                             connection is closed short (no splice), a reset is counted
  half_closed_client         a client that shuts down its write side after the request
                             still gets the whole response
  answer_slower_than_header_read  header_read = 300 ms and an upstream taking 1 s: the GET
                             gets its 200 (header_read ends with the head)

Usage:
  tests/faults/fault_test.py --veer build/veer --upstream build/veer-upstream
                             [--only CASE ...] [--keep]

Prints one line per case (PASS/FAIL, name, time and detail; a failing case adds the tail
of veer's log, indented) and ends with `faults: N passed, N failed`; exits 1 if any case
failed. Python standard library only, plus `wrk` for reload_under_load. Every wait is
bounded by a deadline; every process a case starts is stopped by PID when it ends.
"""

import fcntl
import http.client
import json
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from loopback import (Failure, free_ports, http_get, log, log_tail, lost_a_port, not_run, port_open,  # noqa: E402
                      run_cases, short_tmpdir, spawn, stop, suite_options, wait_until)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# --------------------------------------------------------------------------- helpers

def read_http_response(sock, deadline):
    """Reads one response from a blocking socket (Content-Length, chunked or until close).

    Returns (status, headers lower-case, body, complete); complete is False when the
    connection ended (EOF, reset) before the framing said the body was whole."""
    buf = b""

    def more():
        nonlocal buf
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("response not complete before the deadline")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise Failure("response not complete before the deadline")
        except ConnectionResetError:
            data = b""
        buf += data
        return bool(data)

    while b"\r\n\r\n" not in buf:
        if not more():
            raise Failure(f"connection closed before a response head ({len(buf)} bytes: {buf[:80]!r})")
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            while b"\r\n" not in buf:
                if not more():
                    return status, headers, body, False
            size_line, rest = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                buf = size_line + b"\r\n" + rest
                if not more():
                    return status, headers, body + rest[:size], False
                size_line, rest = buf.split(b"\r\n", 1)
            body += rest[:size]
            buf = rest[size + 2:]
            if size == 0:
                return status, headers, body, True
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            if not more():
                return status, headers, buf, False
        return status, headers, buf[:n], True
    while more():
        pass
    return status, headers, buf, True


def read_until_close(sock, timeout):
    """Everything the peer sends until EOF or reset: (bytes, how) with how in
    'eof', 'reset' or 'timeout'."""
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, "timeout"
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return got, "timeout"
        except ConnectionResetError:
            return got, "reset"
        if not data:
            return got, "eof"
        got += data


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def to_toml(cfg):
    """cfg: {table: {key: value}}; a key "[[split.rules]]" holds a list of tables."""
    out = ["# written by tests/faults/fault_test.py"]
    arrays = []
    for table, body in cfg.items():
        if table.startswith("[["):
            arrays.append((table, body))
            continue
        out.append(f"[{table}]")
        out += [f"{k} = {toml_value(v)}" for k, v in body.items()]
        out.append("")
    for table, items in arrays:  # after every plain table: a later [table] would not reopen
        for item in items:
            out.append(table)
            out += [f"{k} = {toml_value(v)}" for k, v in item.items()]
            out.append("")
    return "\n".join(out)


def merged(base, overrides):
    cfg = {t: dict(b) if isinstance(b, dict) else b for t, b in base.items()}
    for table, body in (overrides or {}).items():
        if isinstance(body, dict) and table in cfg:
            cfg[table].update(body)
        else:
            cfg[table] = body
    return cfg


def parse_metrics(text):
    """Prometheus text -> list of (name, labels dict, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            pass
    return out


def metric(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items()))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- processes

class Veer:
    """A veer process on a config this case wrote; the case stops it."""

    def __init__(self, case, cfg):
        self.case = case
        self.cfg = cfg
        self.port = int(cfg["listener"]["address"].rsplit(":", 1)[1])
        self.admin_port = int(cfg["admin"]["http"].rsplit(":", 1)[1])
        self.socket = cfg["admin"]["socket"]
        self.state = cfg["state"]["path"]
        self.config = os.path.join(case.tmp, "veer.toml")
        self.write_config(cfg)
        self.proc = None
        self.starts = 0

    def write_config(self, cfg):
        self.cfg = cfg
        tmp = self.config + ".new"
        with open(tmp, "w") as f:
            f.write(to_toml(cfg))
        os.replace(tmp, self.config)

    def start(self):
        self.starts += 1
        name = "veer" if self.starts == 1 else f"veer#{self.starts}"
        self.proc = self.case.start(name, [self.case.opts.veer, "--config", self.config])
        self.log_path = self.case.logs[name]
        procs = [(name, self.proc)]

        def ready():
            port_open(self.port)
            with socket.socket(socket.AF_UNIX) as s:  # a socket file left by a dead veer is not enough
                s.settimeout(1)
                s.connect(self.socket)
            return True
        wait_until("veer's listener and admin socket", ready, 20, procs)
        return self

    def admin(self, command, timeout=10):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.socket)
            s.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def status(self):
        return self.admin("status")

    def wait_status(self, what, predicate, timeout_s):
        last = {}

        def probe():
            last["status"] = self.status()
            return predicate(last["status"])
        try:
            wait_until(what, probe, timeout_s, [("veer", self.proc)], interval=0.05)
        except Failure as e:
            raise Failure(f"{e}; last status: {json.dumps(last.get('status'))[:400]}")
        return last["status"]

    def events(self, n=50):
        return self.admin(f"events {n}").get("events", [])

    def metrics(self):
        status, body, _ = http_get(self.admin_port, "/metrics")
        check(status == 200, f"GET /metrics answered {status}")
        return parse_metrics(body.decode("utf-8", "replace"))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class ScriptedUpstream:
    """An HTTP/1.1 upstream on a thread per connection; `handler(up, conn, method, target)`
    answers everything but /healthz (200) and returns whether to keep the connection."""

    def __init__(self, port, handler):
        self.port = port
        self.handler = handler
        self.cond = threading.Condition()
        self.requests = 0  # non-health requests received
        self.gate = threading.Event()
        self._stopping = threading.Event()
        self._conns = set()
        self._threads = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(256)
        self._sock.settimeout(0.2)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn):
        buf = b""
        try:
            conn.settimeout(30)
            while not self._stopping.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                if target == "/healthz":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    continue
                with self.cond:
                    self.requests += 1
                    self.cond.notify_all()
                if not self.handler(self, conn, method, target):
                    return
        except OSError:
            pass
        finally:
            with self.cond:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def wait_requests(self, n, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while self.requests < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def close(self):
        self._stopping.set()
        self.gate.set()
        self._sock.close()
        with self.cond:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


def send_response(conn, status, body, extra=b""):
    reason = {200: b"OK", 500: b"Internal Server Error"}.get(status, b"X")
    conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n" % (status, reason, len(body), extra) + body)


class Case:
    """One case's temporary directory, processes and scripted upstreams."""

    def __init__(self, name, opts):
        self.name = name
        self.opts = opts
        self.tmp = short_tmpdir(f"veer-fault-{name[:12]}-")
        self.procs = []  # (name, Popen)
        self.logs = {}
        self.scripted = []
        self.veers = []

    def start(self, name, args):
        p = spawn(name, args, self.tmp, self.logs)
        self.procs.append((name, p))
        return p

    def upstream(self, name, port, *extra):
        p = self.start(f"upstream-{name}-{port}",
                       [self.opts.upstream, "--name", name, "--port", str(port)] + list(extra))
        wait_until(f"veer-upstream {name} on port {port}", lambda: port_open(port), 10, [(name, p)])
        return p

    def script(self, port, handler):
        up = ScriptedUpstream(port, handler)
        self.scripted.append(up)
        return up

    def veer(self, blue, green, overrides=None, start=True):
        listen, admin = free_ports(2)
        base = {
            "listener": {"address": f"127.0.0.1:{listen}", "threads": 2},
            "admin": {"socket": os.path.join(self.tmp, "admin.sock"), "http": f"127.0.0.1:{admin}"},
            "pools.blue": {"endpoints": blue},
            "pools.green": {"endpoints": green},
            "split": {"stable": "blue", "canary_weight": 0},
            "health": {"interval": "200ms", "timeout": "200ms"},
            "slo": {"window": "10s", "evaluate_every": "200ms", "min_requests": 20},
            "timeouts": {"drain": "5s"},
            "state": {"path": os.path.join(self.tmp, "state.json")},
            "log": {"level": "info"},
        }
        v = Veer(self, merged(base, overrides))
        self.veers.append(v)
        return v.start() if start else v

    def log_tail(self, n=8):
        return log_tail({name: path for name, path in self.logs.items() if name.startswith("veer")}, n)

    def lost_a_port(self, detail):
        return lost_a_port(self.logs.values(), detail)

    def close(self):
        for name, p in self.procs:  # a SIGSTOPped process never handles SIGTERM
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        stop(reversed(self.procs))
        for up in self.scripted:
            up.close()


# --------------------------------------------------------------------------- cases

def case_upstream_stops_answering(c):
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    green = c.upstream("green", gp)
    deadline_s = 0.5
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], {
        "split": {"canary_weight": 50},
        "slo": {"evaluate_every": "200ms", "min_requests": 20},
        "timeouts": {"upstream_response": "500ms"},
        "health": {"interval": "200ms", "timeout": "200ms"},
    })
    # Healthy first: both pools answer, so veer holds keep-alive connections to green.
    seen = {"blue": 0, "green": 0}
    for i in range(40):
        status, body, _ = http_get(v.port, f"/warm/{i}")
        check(status == 200, f"warm-up request {i}: {status} {body[:80]!r}")
        name = body.split(b" ", 1)[0].decode("latin-1")
        seen[name] = seen.get(name, 0) + 1
    check(seen["blue"] > 0 and seen["green"] > 0, f"canary_weight 50 reaches both pools ({seen})")

    results = []  # (start monotonic, duration, status or error name, first word of body)
    lock = threading.Lock()
    stop = threading.Event()

    def client(i):
        conn = None
        end = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < end:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=5)
            t0 = time.monotonic()
            try:
                conn.request("GET", f"/c{i}")
                r = conn.getresponse()
                body = r.read()
                out = (t0, time.monotonic() - t0, r.status, body.split(b" ", 1)[0].decode("latin-1"))
                if (r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                out = (t0, time.monotonic() - t0, type(e).__name__, "")
                conn.close()
                conn = None
            with lock:
                results.append(out)
        if conn:
            conn.close()

    os.kill(green.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(6)]
    try:
        for t in threads:
            t.start()
        try:
            st = v.wait_status("state rolled_back", lambda s: s["state"] == "rolled_back", 12)
        finally:
            rolled_at = time.monotonic()
            # Keep the clients going a little after the rollback: they must get blue's 200s.
            after = rolled_at + 1.0
            while time.monotonic() < after and any(t.is_alive() for t in threads):
                time.sleep(0.05)
            stop.set()
            for t in threads:
                t.join(10)
    finally:
        os.kill(green.pid, signal.SIGCONT)
    check(not any(t.is_alive() for t in threads), "a client thread still hangs 10 s after being stopped")

    errors = [r for r in results if not isinstance(r[2], int)]
    check(not errors, f"{len(errors)} of {len(results)} requests failed without an answer "
                      f"(first: {errors[0][2]} after {errors[0][1]:.2f}s)" if errors else "")
    odd = [r for r in results if r[2] not in (200, 504)]
    check(not odd, f"statuses other than 200/504: {sorted(set(r[2] for r in odd))}")
    green_200 = [r for r in results if r[2] == 200 and r[3] != "blue"]
    check(not green_200, f"{len(green_200)} answers 200 not from blue while green was stopped ({green_200[0][3]!r})"
          if green_200 else "")
    t504 = [r for r in results if r[2] == 504]
    check(t504, f"no 504 at all in {len(results)} requests, although green was stopped with weight 50")
    durations = sorted(r[1] for r in t504)
    check(durations[0] >= deadline_s * 0.9,
          f"a 504 came after {durations[0]:.3f}s, before the upstream_response deadline {deadline_s}s")
    check(durations[-1] <= deadline_s + 2.0,
          f"a 504 took {durations[-1]:.3f}s (deadline {deadline_s}s): veer waited well past it")
    late_504 = [r for r in t504 if r[0] > rolled_at + 0.3]
    check(not late_504, f"{len(late_504)} requests started after the rollback still got 504")
    check(st["canary_weight"] == 0, f"rolled back but canary_weight is {st['canary_weight']}")
    rollbacks = [e for e in v.events() if e.get("kind") == "rollback"]
    check(rollbacks, "state rolled_back but no rollback event")
    check(rollbacks[-1].get("by") in ("judge", "health"),
          f"rollback event by {rollbacks[-1].get('by')!r}, expected judge or health")
    after_rb = [r for r in results if r[0] > rolled_at + 0.3]
    check(all(r[2] == 200 and r[3] == "blue" for r in after_rb), "after the rollback blue serves every request")
    for i in range(5):
        status, body, _ = http_get(v.port, f"/after/{i}")
        check(status == 200 and body.startswith(b"blue"), f"after rollback: {status} {body[:60]!r}")
    return (f"{len(results)} requests: {len(t504)} x 504 in {durations[0]:.2f}-{durations[-1]:.2f}s, "
            f"rest 200 from blue; rolled back {rolled_at - stopped_at:.2f}s after SIGSTOP "
            f"by {rollbacks[-1].get('by')}: {rollbacks[-1].get('reason', '')[:80]!r}")


def case_reload_under_load(c):
    wrk = shutil.which("wrk")
    check(wrk, "wrk is not installed (scripts/deps test installs it)")
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp)
    configs = [
        {"split": {"canary_weight": 10},
         "[[split.rules]]": [{"header": "X-Canary", "equals": "a", "pool": "canary"}]},
        {"split": {"canary_weight": 20},
         "[[split.rules]]": [{"header": "X-Canary", "equals": "b", "pool": "canary"}]},
    ]
    common = {"slo": {"min_requests": 1000000}}  # never judged: load on a shared box is not a verdict
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], merged(common, configs[0]))
    base_cfg = {t: b for t, b in v.cfg.items() if t != "[[split.rules]]"}

    # wrk runs at least 8 s and until every reload is done: it is stopped by SIGINT (it
    # prints its figures then), so a slow machine stretches the run instead of leaving
    # reloads without load.
    wrk_out = os.path.join(c.tmp, "wrk.out")
    with open(wrk_out, "wb") as f:
        w = subprocess.Popen([wrk, "-t1", "-c20", "-d60s", "--timeout", "5s", f"http://127.0.0.1:{v.port}/"],
                             stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wrk_started = time.monotonic()
    c.procs.append(("wrk", w))
    wait_until("wrk's 20 connections", lambda: v.status().get("connections", 20) >= 20, 5, [("wrk", w)])

    # New connections too, all along: the listener must never refuse one.
    probe = {"ok": 0, "bad": []}
    stop = threading.Event()

    def prober():
        end = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < end:
            try:
                status, body, _ = http_get(v.port, "/probe", {"Connection": "close"}, timeout=5)
                if status == 200:
                    probe["ok"] += 1
                else:
                    probe["bad"].append(f"{status} {body[:40]!r}")
            except (OSError, http.client.HTTPException) as e:
                probe["bad"].append(type(e).__name__)
            stop.wait(0.02)

    pt = threading.Thread(target=prober, daemon=True)
    pt.start()
    answers = []
    slowest = 0.0
    t0 = time.monotonic()
    try:
        for i in range(50):
            if w.poll() is not None:
                with open(wrk_out) as f:
                    raise Failure(f"wrk ended during reload {i}: {f.read()[-300:]!r}")
            check(time.monotonic() - t0 < 40, f"only {i} reloads done in 40 s")
            v.write_config(merged(base_cfg, configs[i % 2]))
            r0 = time.monotonic()
            answers.append(v.admin("reload"))
            slowest = max(slowest, time.monotonic() - r0)
            pause = t0 + 0.11 * (i + 1) - time.monotonic()  # pacing: 50 reloads over ~5.5 s
            if pause > 0:
                time.sleep(pause)
        stop_at = max(wrk_started + 8, time.monotonic() + 0.5)
        while time.monotonic() < stop_at and w.poll() is None:
            time.sleep(0.05)
    finally:
        stop.set()
        pt.join(10)
        if w.poll() is None:
            w.send_signal(signal.SIGINT)
    try:
        w.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise Failure("wrk did not finish 15 s after SIGINT")
    with open(wrk_out) as f:
        out = f.read()

    bad = [a for a in answers if not a.get("ok")]
    check(not bad, f"{len(bad)} of 50 reloads failed: {json.dumps(bad[0])[:200]}" if bad else "")
    m = re.search(r"(\d+) requests in", out)
    check(m and int(m.group(1)) > 0, f"wrk made no requests: {out[-300:]!r}")
    requests = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock_err = tuple(int(x) for x in m.groups()) if m else (0, 0, 0, 0)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    check(sock_err[0] == 0, f"wrk: {sock_err[0]} connect errors: the listener refused connections during reloads")
    check(sock_err == (0, 0, 0, 0),
          f"wrk socket errors during reloads: connect {sock_err[0]}, read {sock_err[1]}, "
          f"write {sock_err[2]}, timeout {sock_err[3]}")
    check(non2xx == 0, f"wrk: {non2xx} non-2xx/3xx responses of {requests} during reloads")
    check(not probe["bad"], f"fresh connections during reloads: {len(probe['bad'])} failed "
                            f"(first: {probe['bad'][0]})" if probe["bad"] else "")
    check(probe["ok"] > 0, "no fresh-connection probe completed")
    # The last reload (config index 1) is in force: its rule sends X-Canary: b to green.
    status, body, _ = http_get(v.port, "/rule", {"X-Canary": "b"})
    check(status == 200 and body.startswith(b"green"),
          f"after the last reload X-Canary: b goes to green (got {status} {body[:40]!r})")
    return (f"wrk {requests} requests in {time.monotonic() - wrk_started:.1f}s, 0 errors, 0 non-2xx; "
            f"50/50 reloads ok (slowest answer {slowest * 1000:.0f} ms); {probe['ok']} fresh connections all served")


def case_sigterm_with_20_in_flight(c):
    bp, gp = free_ports(2)
    n = 20

    def hold(up, conn, method, target):
        up.gate.wait(20)  # the test opens the gate once veer is draining
        send_response(conn, 200, f"held {target}\n".encode())
        return True

    up = c.script(bp, hold)
    c.upstream("green", gp)
    drain_s = 10
    v = c.veer([up.address], [f"127.0.0.1:{gp}"], {"timeouts": {"drain": f"{drain_s}s"},
                                                   "health": {"interval": "1s", "timeout": "1s"}})
    results = {}

    def client(i):
        try:
            results[i] = http_get(v.port, f"/hold/{i}", timeout=25)[:2]
        except (OSError, http.client.HTTPException) as e:
            results[i] = (type(e).__name__, b"")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    try:
        check(up.wait_requests(n, 15), f"only {up.requests} of {n} requests reached the upstream in 15 s")
        st = v.status()
        in_flight = st.get("connections")
        v.proc.send_signal(signal.SIGTERM)
        term_at = time.monotonic()

        def refused():
            try:
                socket.create_connection(("127.0.0.1", v.port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True
        wait_until("the listener to stop accepting after SIGTERM", refused, 5)
        check(v.proc.poll() is None, f"veer exited ({v.proc.returncode}) with {n} requests in flight")
    finally:
        up.gate.set()
    for t in threads:
        t.join(max(1, drain_s + 5 - (time.monotonic() - term_at)))
    try:
        code = v.proc.wait(timeout=max(1, drain_s + 5 - (time.monotonic() - term_at)))
    except subprocess.TimeoutExpired:
        raise Failure(f"veer still running {drain_s + 5}s after SIGTERM (timeouts.drain {drain_s}s)")
    exited_after = time.monotonic() - term_at
    got = [results.get(i, ("no answer", b"")) for i in range(n)]
    bad = [(i, g) for i, g in enumerate(got) if g[0] != 200 or g[1] != f"held /hold/{i}\n".encode()]
    check(not bad, f"{len(bad)} of {n} in-flight requests not answered 200 (first: #{bad[0][0]} "
                   f"{bad[0][1][0]} {bad[0][1][1][:40]!r})" if bad else "")
    check(code == 0, f"veer exited with {code} after SIGTERM, expected 0")
    check(exited_after <= drain_s, f"veer took {exited_after:.2f}s to exit, over timeouts.drain {drain_s}s")
    return (f"{n}/{n} in-flight requests got 200 (status connections={in_flight}); listener closed, "
            f"exit 0 {exited_after:.2f}s after SIGTERM")


def case_kill9_state_changes(c):
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp)
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], {"slo": {"min_requests": 1000000}}, start=False)
    rng = random.Random()
    report = []
    prev_weight = 0
    for rnd in range(3):
        v.start()
        if rnd:
            st = v.status()
            check(st["canary_weight"] == prev_weight,
                  f"round {rnd}: restarted veer shows canary_weight {st['canary_weight']}, "
                  f"{prev_weight} before the kill")
        first = rng.randrange(101)
        acked = []
        errors = []
        done = threading.Event()

        def changer():
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(10)
                    s.connect(v.socket)
                    f = s.makefile("rb")
                    for i in range(1000):
                        w = (first + i) % 101
                        s.sendall(f"set weight {w}\n".encode())
                        line = f.readline()
                        if not line:
                            return
                        a = json.loads(line)
                        if a.get("ok"):
                            acked.append(w)
                        else:
                            errors.append((w, a))
                            return
            except (OSError, ValueError):
                pass
            finally:
                done.set()

        t = threading.Thread(target=changer, daemon=True)
        t.start()
        kill_after = rng.randint(5, 500)  # ~fsync-bound: keeps the case a few seconds
        wait_until(f"{kill_after} acknowledged weight changes",
                   lambda: len(acked) >= kill_after or done.is_set(), 30, [("veer", v.proc)], interval=0.002)
        os.kill(v.proc.pid, signal.SIGKILL)
        v.proc.wait(timeout=10)
        t.join(10)
        check(not t.is_alive(), "the admin client still waits 10 s after veer was killed")
        check(not errors, f"round {rnd}: `set weight {errors[0][0]}` refused: {errors[0][1]}" if errors else "")
        check(acked, f"round {rnd}: no weight change acknowledged before the kill")
        last = acked[-1]
        nxt = (last + 1) % 101 if len(acked) < 1000 else last
        try:
            with open(v.state) as f:
                state = json.load(f)
        except (OSError, ValueError) as e:
            raise Failure(f"round {rnd}: state file {v.state} unreadable after kill -9: {e}")
        check(isinstance(state, dict), f"round {rnd}: state file is not a JSON object")
        log_before = len(v.log_text())
        v.start()
        st = v.status()
        complaint = [line for line in v.log_text()[log_before:].splitlines() if "state file" in line]
        check(not complaint, f"round {rnd}: veer rejected its state file: {complaint[0][:200]}" if complaint else "")
        check(st["canary_weight"] in (last, nxt),
              f"round {rnd}: killed after {len(acked)} acknowledged changes (last {last}, next {nxt}); "
              f"restarted veer shows canary_weight {st['canary_weight']}")
        prev_weight = st["canary_weight"]
        report.append(f"{len(acked)} acks, last {last} -> {st['canary_weight']}")
        v.proc.send_signal(signal.SIGTERM)
        try:
            v.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise Failure(f"round {rnd}: veer did not exit 10 s after SIGTERM")
    return "; ".join(report)


def case_slowloris(c):
    n = 500
    raise_nofile(n + 512)
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp)
    header_read = 1.0
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], {
        "listener": {"threads": 1},
        "timeouts": {"header_read": "1s"},
    })
    normal = []  # (duration, status or error)
    stop = threading.Event()

    def normal_client():
        end = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < end:
            t0 = time.monotonic()
            try:
                status = http_get(v.port, "/normal", timeout=5)[0]
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
            normal.append((time.monotonic() - t0, status))
            stop.wait(0.05)

    nt = threading.Thread(target=normal_client, daemon=True)
    nt.start()
    sel = selectors.DefaultSelector()
    socks = []
    opened = {}
    closed = {}
    head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: "
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", v.port), timeout=5)
            opened[s] = time.monotonic()
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        all_open = time.monotonic()
        sent = 0
        next_tick = time.monotonic()
        deadline = all_open + header_read + 5
        while len(closed) < n and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_tick:
                b = head[sent:sent + 1] or b"a"
                sent += 1
                for s in socks:
                    if s in closed:
                        continue
                    try:
                        s.send(b)
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        closed[s] = time.monotonic()
                        sel.unregister(s)
                next_tick += 0.1
            for key, _ in sel.select(max(0.0, next_tick - time.monotonic())):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed[s] = time.monotonic()
                    sel.unregister(s)
        # The normal client keeps going a little after the slow ones are gone.
        stop.wait(0.3)
    finally:
        stop.set()
        nt.join(10)
        for s in socks:
            s.close()
        sel.close()
    still = n - len(closed)
    check(still == 0, f"{still} of {n} trickling connections still open {header_read + 5:.0f}s after "
                      f"they were opened (timeouts.header_read {header_read}s)")
    lifetimes = sorted(closed[s] - opened[s] for s in socks)
    check(lifetimes[0] >= header_read * 0.9,
          f"a trickling connection was closed after {lifetimes[0]:.2f}s, before header_read {header_read}s")
    check(lifetimes[-1] <= header_read + 1.0,
          f"slowest close of a trickling connection after {lifetimes[-1]:.2f}s, over header_read + 1 s")
    bad = [x for x in normal if x[1] != 200]
    check(not bad, f"{len(bad)} of {len(normal)} normal requests failed (first: {bad[0][1]})" if bad else "")
    slow = [x for x in normal if x[0] > 1.0]
    check(not slow, f"{len(slow)} of {len(normal)} normal requests took over 1 s (max {max(x[0] for x in normal):.2f}s)"
          if slow else "")
    check(len(normal) >= 10, f"only {len(normal)} normal requests made")
    return (f"{n} trickling connections closed after {lifetimes[0]:.2f}-{lifetimes[-1]:.2f}s; "
            f"{len(normal)} normal requests all 200, max {max(x[0] for x in normal) * 1000:.0f} ms")


def case_over_max_connections(c):
    limit, extra = 50, 10
    raise_nofile(limit + extra + 512)
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp)
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], {
        "limits": {"max_connections": limit},
        "timeouts": {"header_read": "30s", "idle": "60s"},
    })
    # The readiness probe's connection must be gone first, or it holds one of the places
    # (veer accepts a burst before it sees that probe's close).
    wait_until("the readiness probe's connection to end",
               lambda: metric(v.metrics(), "veer_connections_active") == 0, 5)
    socks = []
    try:
        opened = {}
        for i in range(limit + extra):
            s = socket.create_connection(("127.0.0.1", v.port), timeout=5)
            opened[s] = time.monotonic()
            socks.append(s)
        sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed = {}
        watch_until = time.monotonic() + 2.0
        while time.monotonic() < watch_until:
            for key, _ in sel.select(max(0.0, watch_until - time.monotonic())):
                s = key.fileobj
                try:
                    s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    pass
                # EOF or reset; bytes sent to a client that sent nothing count too (an error page).
                closed[s] = time.monotonic() - opened[s]
                sel.unregister(s)
        sel.close()
        check(len(closed) == extra, f"{len(closed)} of {limit + extra} idle connections closed by veer within "
                                    f"2 s, expected the {extra} over limits.max_connections {limit}")
        slowest = max(closed.values())
        check(slowest <= 1.5, f"an over-limit connection was closed only {slowest:.2f}s after connecting")

        st = v.status()
        check(st.get("ok"), f"status at the connection limit: {st}")
        status, body, _ = http_get(v.admin_port, "/healthz")
        check(status == 200, f"admin /healthz at the connection limit answered {status}")
        refused = metric(v.metrics(), "veer_connections_refused_total")
        check(refused >= extra, f"veer_connections_refused_total is {refused}, expected >= {extra}")
        status, _, _ = http_get(gp, "/admin/health/off")
        check(status == 200, f"veer-upstream green /admin/health/off answered {status}")
        st = v.wait_status("green's endpoint healthy:false at the connection limit",
                           lambda s: not s["pools"]["green"]["endpoints"][0]["healthy"], 10)
        conns_at_limit = st.get("connections")
    finally:
        for s in socks:
            s.close()
    # Once the idle ones are gone, new clients are served again.
    wait_until("a request served after the idle connections closed",
               lambda: http_get(v.port, "/again", timeout=2)[0] == 200, 5)
    return (f"{extra} of {limit + extra} closed within {slowest:.2f}s, {limit} kept "
            f"(status connections={conns_at_limit}, refused_total={refused:.0f}); status/healthz answered; "
            f"green turned healthy:false; served again after")


def case_upstream_reset_mid_body(c):
    bp, gp = free_ports(2)
    length, sent_bytes = 1_000_000, 100 * 1024

    def truncated(up, conn, method, target):
        if target.startswith("/fine"):
            send_response(conn, 200, b"fine\n")
            return True
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n" % length
                     + b"x" * sent_bytes)
        # Until veer's kernel has acknowledged every byte (a bounded poll), then reset or close.
        end = time.monotonic() + 3
        while time.monotonic() < end:
            outq = fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            if int.from_bytes(outq, sys.byteorder) == 0:
                break
            time.sleep(0.005)
        if target.startswith("/reset"):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
        return False

    up = c.script(bp, truncated)
    c.upstream("green", gp)
    v = c.veer([up.address], [f"127.0.0.1:{gp}"], {"timeouts": {"upstream_response": "5s"},
                                                   "health": {"interval": "1s", "timeout": "1s"}})
    details = []
    # The last one pipelines a second request behind the failing one: its answer must not
    # be spliced into the first one's body.
    for target, pipelined in (("/reset/1", ""), ("/reset/2", ""), ("/close/1", ""), ("/reset/3", "/fine")):
        with socket.create_connection(("127.0.0.1", v.port), timeout=5) as s:
            req = f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"
            if pipelined:
                req += f"GET {pipelined} HTTP/1.1\r\nHost: x\r\n\r\n"
            s.sendall(req.encode())
            got, how = read_until_close(s, 10)
        check(how != "timeout", f"{target}: client connection still open 10 s after the upstream "
                                f"{'reset' if 'reset' in target else 'closed'} ({len(got)} bytes read)")
        check(b"\r\n\r\n" in got, f"{target}: no response head before the close ({got[:80]!r})")
        head, body = got.split(b"\r\n\r\n", 1)
        first = head.split(b"\r\n", 1)[0]
        check(first.startswith(b"HTTP/1.1 200"), f"{target}: status line {first!r}, expected the upstream's 200")
        check(b"content-length: %d" % length in head.lower() or b"transfer-encoding" in head.lower(),
              f"{target}: head does not carry the upstream's framing: {head[:200]!r}")
        check(len(body) < length, f"{target}: got the full {len(body)}-byte body from an upstream that sent {sent_bytes}")
        check(body.count(b"x") == len(body),
              f"{target}: bytes that are not the upstream's body after {body.count(b'x')} x's: "
              f"{body.lstrip(b'x')[:80]!r} (a spliced response?)")
        details.append(f"{target}{' + ' + pipelined if pipelined else ''} {len(body)}B then {how}")
    samples = []

    def counted():
        samples[:] = v.metrics()
        return metric(samples, "veer_requests_total", endpoint=up.address, **{"class": "reset"}) >= 1
    try:
        wait_until("veer_requests_total{class=\"reset\"} >= 1 for the resetting endpoint", counted, 5)
    except Failure:
        classes = {l.get("class"): v_ for n, l, v_ in samples
                   if n == "veer_requests_total" and l.get("endpoint") == up.address}
        raise Failure(f"no reset counted for {up.address} after 3 resets mid-body; its counters: {classes}")
    resets = metric(samples, "veer_requests_total", endpoint=up.address, **{"class": "reset"})
    return "; ".join(details) + f"; reset counter {resets:.0f}"


def case_half_closed_client(c):
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp)
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"])
    size = 200_000
    details = []
    for conn_header in ("", "Connection: keep-alive\r\n", "Connection: close\r\n"):
        with socket.create_connection(("127.0.0.1", v.port), timeout=5) as s:
            s.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: x\r\n{conn_header}\r\n".encode())
            s.shutdown(socket.SHUT_WR)
            status, headers, body, complete = read_http_response(s, time.monotonic() + 10)
        what = conn_header.strip() or "no Connection header"
        check(status == 200, f"{what}: status {status} after a half-close")
        check(complete and len(body) == size,
              f"{what}: {len(body)} of {size} body bytes before the connection ended")
        check(body.count(b"x") == size or len(set(body)) <= 2, f"{what}: unexpected body bytes")
        details.append(f"{what}: {len(body)} bytes")
    return "whole response after SHUT_WR (" + "; ".join(details) + ")"


def case_answer_slower_than_header_read(c):
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp)
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"],
               {"timeouts": {"header_read": "300ms", "upstream_response": "5s"}})
    t0 = time.monotonic()
    status, body, _ = http_get(v.port, "/sleep/1", timeout=10)  # an upstream taking 1 s
    took = time.monotonic() - t0
    check(status == 200, f"a GET whose answer takes longer than header_read still gets it: {status}")
    return f"200 after {took:.2f} s with header_read = 300 ms"


CASES = [
    ("upstream_stops_answering", case_upstream_stops_answering),
    ("reload_under_load", case_reload_under_load),
    ("sigterm_with_20_in_flight", case_sigterm_with_20_in_flight),
    ("kill9_state_changes", case_kill9_state_changes),
    ("slowloris", case_slowloris),
    ("over_max_connections", case_over_max_connections),
    ("upstream_reset_mid_body", case_upstream_reset_mid_body),
    ("half_closed_client", case_half_closed_client),
    ("answer_slower_than_header_read", case_answer_slower_than_header_read),
]


def main():
    opts = suite_options(__doc__, CASES, ("--upstream", {"required": True, "help": "the veer-upstream binary"}))
    for b in (opts.veer, opts.upstream):
        if not os.access(b, os.X_OK):
            return not_run("faults", f"{b} is not an executable")
    passed, failed = run_cases(CASES, opts, lambda name: Case(name, opts))
    log(f"faults: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
