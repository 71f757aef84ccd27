#!/usr/bin/env python3
"""External gates (SPEC 13) over loopback: a real Prometheus and Alertmanager judging the canary.

The run shares, on free 127.0.0.1 ports: a tiny exporter (HTTP /metrics serving the series
each case sets: `checkout_errors{version="blue"|"green"}` and others) and a real Prometheus
scraping it every 1 s (rule evaluation every 1 s, two alerting rules, alerts sent to an
Alertmanager port). It is started once: Prometheus 2.42 scrapes static targets only after
its discovery's first 5 s tick. Each case then sets the exporter's series (and waits until
Prometheus shows exactly those) and starts, in its own temporary directory, two scripted
upstreams (blue, green), veer ([slo] evaluate_every 200ms, min_requests 5, compare false;
health checks off; rollout steps [50, 100], step_interval 1s) with background traffic
through it, and when it needs one a real Alertmanager on that port (no clustering;
group_wait 0s, group_interval 1s, a webhook to veer with a bearer token from a file). It
checks what SPEC 13 promises:

  gate_holds_without_data    on_no_data = hold: a rollout holds at step 0 (status holding, gate
                             verdict "holding", value null) while the canary's series is absent,
                             for 3 step intervals with enough traffic; once the exporter reports
                             0 the gate turns ok and the rollout advances; a {{stable}} gate is ok
  gate_violation_rolls_back  green's series at 0.5 > max 0.01: nothing while the canary has
                             weight 0; `set weight 50` -> rolled back by the judge, the reason
                             naming the gate, figures gate/query (substituted)/value/limit,
                             status and veer_gate_value show 0.5
  gate_query_error_holds     bad PromQL, a Prometheus that is down and one that never answers:
                             each gate's verdict "error" with its error, the rollout holds at
                             step 0, no rollback, veer_gate_errors_total grows
  alertmanager_rolls_back    a Prometheus alerting rule (severity critical) fires through the real
                             Alertmanager, whose webhook reaches veer: rolled back by "alert";
                             a warning alert before it and the resolved notification after it
                             are events only; prints the delays (exporter -> rollback,
                             alert startsAt -> veer's rollback event)
  receiver_refuses_bad_input no token, wrong tokens, 2 MiB bodies (Content-Length and chunked),
                             malformed JSON, version 3, no alerts array, GET /alerts, POST /other:
                             each refused with its status and nothing changed (state, weight,
                             events); a valid non-matching alert and a resolved matching one:
                             200, events only; a matching one at weight 0: event only; then a
                             matching one at weight 50 rolls back
  gate_min_and_no_data_pass  a `min` gate and an on_no_data = pass gate on an absent series: the
                             rollout advances; the min gate's value falling below rolls back
  gate_no_data_fail          on_no_data = fail on an absent series: `set weight 50` rolls back

Usage:
  tests/gates/gates_test.py --veer build/veer [--prometheus PATH] [--alertmanager PATH]
                            [--only CASE ...] [--keep]

Prints one line per case (PASS/FAIL, name, time, detail; a failing case adds the tails of the
logs) and ends with `gates: N passed, N failed`; exits 1 if any case failed. Without
Prometheus or Alertmanager installed every case fails, unless VEER_ALLOW_SKIP=1: then it
prints "SKIP: ..." and exits 0. Python standard library only. Every wait is bounded by a
deadline (waits poll; the only fixed waits are the "nothing happens for N s" checks); every
process a case starts is stopped by PID when it ends (Prometheus and Alertmanager with
SIGKILL: their storage is thrown away). A case that loses a port to another process before
binding it runs again on other ports.
"""

import base64
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..")
for p in (TESTS, os.path.join(TESTS, "faults")):
    if p not in sys.path:
        sys.path.insert(0, p)
from loopback import (Failure, free_ports, http_get, log, log_tail, lost_a_port, not_run, port_open,  # noqa: E402
                      run_cases, short_tmpdir, spawn, suite_options, wait_until)
from fault_test import (ScriptedUpstream, Veer, check, merged, metric, parse_metrics,  # noqa: E402
                        read_http_response, send_response)

CANARY_Q = 'max(checkout_errors{version="{{canary}}"})'
STABLE_Q = 'max(checkout_errors{version="{{stable}}"})'
GREEN = 'checkout_errors{version="green"}'
BLUE = 'checkout_errors{version="blue"}'
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# --------------------------------------------------------------------------- small helpers

def find_binary(names, explicit=None, env=None):
    for candidate in [explicit, os.environ.get(env) if env else None] + \
            [shutil.which(n) for n in names] + [f"/usr/bin/{n}" for n in names]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def weight(st):
    return float(st.get("canary_weight", -1))


def gate_entry(st, name):
    for g in st.get("gates") or []:
        if isinstance(g, dict) and g.get("name") == name:
            return g
    return None


def verdict(st, name):
    g = gate_entry(st, name)
    return g.get("verdict") if g else None


def brief(st):
    if not st:
        return "-"
    gates = [(g.get("name"), g.get("verdict"), g.get("value")) for g in st.get("gates") or []
             if isinstance(g, dict)]
    return (f"state={st.get('state')} weight={st.get('canary_weight')} step={st.get('step')} "
            f"paused={st.get('paused')} holding={st.get('holding')} gates={gates}")


def ok(v, command):
    a = v.admin(command)
    check(a.get("ok") is True, f"`{command}` answered {json.dumps(a)[:300]}")
    return a


def kinds(events, kind, by=None):
    return [e for e in events if e.get("kind") == kind and (by is None or e.get("by") == by)]


def mentions(event, text):
    return text.lower() in json.dumps(event).lower()


def sample(samples, name, **labels):
    """The value of the one sample of `name` with exactly these labels' values, or None."""
    for n, l, v in samples:
        if n == name and all(l.get(k) == x for k, x in labels.items()):
            return v
    return None


def parse_time(text):
    """RFC 3339 (any fraction length, Z or offset) -> unix seconds."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text or "")
    if not m:
        raise Failure(f"not an RFC 3339 time: {text!r}")
    frac = (m.group(2) or ".0")[:7]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + zone).timestamp()


def iso_now(offset_s=0.0):
    t = datetime.fromtimestamp(time.time() + offset_s, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def is_limit(value, number, word):
    """A figure `limit`: the number itself, or a string such as "max 0.01"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(value - number) < 1e-9
    return isinstance(value, str) and word in value and repr(number).rstrip("0").rstrip(".") in value


# --------------------------------------------------------------------------- exporter, blackhole

class Exporter:
    """GET /metrics (any path) -> the series the case set, in the text format."""

    def __init__(self, port):
        self.port = port
        self._lock = threading.Lock()
        self._series = {}
        self.scrapes = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with outer._lock:
                    outer.scrapes += 1
                    body = "".join(f"{k} {v!r}\n" for k, v in outer._series.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def set(self, series, value):
        """`series` like 'checkout_errors{version="green"}'; value None removes it."""
        with self._lock:
            if value is None:
                self._series.pop(series, None)
            else:
                self._series[series] = float(value)

    def replace(self, series):
        """Exactly these series from now on."""
        with self._lock:
            self._series = {k: float(v) for k, v in series.items()}

    def close(self):
        self._server.shutdown()
        self._server.server_close()


class Blackhole:
    """Accepts connections and never answers (a Prometheus that hangs)."""

    def __init__(self, port):
        self.port = port
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._conns = []
        self._stop = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)

    def close(self):
        self._stop.set()
        self._sock.close()
        self._thread.join(5)
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- Prometheus, Alertmanager

class Prometheus:
    def __init__(self, case, port, exporter_port, rules=None, alertmanager_port=None):
        self.port = port
        d = os.path.join(case.tmp, "prometheus")
        os.makedirs(d, exist_ok=True)
        cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
               "scrape_configs": [{"job_name": "shop",
                                   "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}]}
        if rules:
            path = os.path.join(d, "rules.yml")
            with open(path, "w") as f:
                json.dump({"groups": [{"name": "shop", "interval": "1s", "rules": rules}]}, f, indent=1)
            cfg["rule_files"] = [path]
        if alertmanager_port:
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [
                {"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
        # Alerts that fire before the notifier has discovered its Alertmanager are only sent
        # again after rules.alert.resend-delay (default 1m): resend every second instead.
        resend = ["--rules.alert.resend-delay=1s"] if alertmanager_port else []
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:  # YAML is a superset of JSON
            json.dump(cfg, f, indent=1)
        self.proc = case.start("prometheus", [case.opts.prometheus, f"--config.file={conf}",
                                              f"--storage.tsdb.path={os.path.join(d, 'data')}",
                                              f"--web.listen-address=127.0.0.1:{port}",
                                              "--log.level=warn"] + resend, fast_kill=True)
        wait_until("Prometheus /-/ready", lambda: http_get(port, "/-/ready", timeout=2)[0] == 200, 20,
                   [("prometheus", self.proc)], interval=0.05)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def query(self, q):
        status, body, _ = http_get(self.port, "/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=5)
        return status, json.loads(body)

    def value(self, q):
        """The one sample's value of a vector query, None when empty."""
        status, doc = self.query(q)
        check(status == 200 and doc.get("status") == "success", f"Prometheus query {q!r}: {status} {doc}")
        result = doc["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, q, predicate, what, timeout=6):
        last = {}

        def probe():
            last["v"] = self.value(q)
            return predicate(last["v"])
        try:
            wait_until(what, probe, timeout, [("prometheus", self.proc)], interval=0.1)
        except Failure as e:
            raise Failure(f"{e}; Prometheus answers {last.get('v')!r} to {q}")

    def wait_up(self):
        self.wait_value('up{job="shop"}', lambda v: v == 1, "Prometheus scraping the exporter (up == 1)")


class Alertmanager:
    def __init__(self, case, port, webhook_url, token_file):
        self.port = port
        d = os.path.join(case.tmp, "alertmanager")
        os.makedirs(d, exist_ok=True)
        cfg = {"route": {"receiver": "veer", "group_by": ["alertname"], "group_wait": "0s",
                         "group_interval": "1s", "repeat_interval": "1h"},
               "receivers": [{"name": "veer", "webhook_configs": [{
                   "url": webhook_url, "send_resolved": True,
                   "http_config": {"authorization": {"type": "Bearer", "credentials_file": token_file}}}]}]}
        conf = os.path.join(d, "alertmanager.yml")
        with open(conf, "w") as f:
            json.dump(cfg, f, indent=1)
        self.proc = case.start("alertmanager", [case.opts.alertmanager, f"--config.file={conf}",
                                                f"--storage.path={os.path.join(d, 'data')}",
                                                f"--web.listen-address=127.0.0.1:{port}",
                                                "--cluster.listen-address=", "--log.level=info"],
                               fast_kill=True)
        wait_until("Alertmanager /-/ready", lambda: http_get(port, "/-/ready", timeout=2)[0] == 200, 20,
                   [("alertmanager", self.proc)], interval=0.05)

    def alerts(self):
        status, body, _ = http_get(self.port, "/api/v2/alerts", timeout=5)
        check(status == 200, f"Alertmanager GET /api/v2/alerts answered {status}")
        return json.loads(body)

    def webhook_counts(self):
        status, body, _ = http_get(self.port, "/metrics", timeout=5)
        samples = parse_metrics(body.decode("utf-8", "replace"))
        return (metric(samples, "alertmanager_notifications_total", integration="webhook"),
                metric(samples, "alertmanager_notifications_failed_total", integration="webhook"))


SERIES_KEY = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')


def series_key(name, labels):
    return (name, tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", "job", "instance"))))


class Stack:
    """What every case shares: the exporter and one Prometheus scraping it (its alerting rules
    sending to an Alertmanager port that the Alertmanager case binds), started once per run.
    Prometheus 2.42 hands static scrape targets over only on its discovery manager's first 5 s
    tick, so a Prometheus per case would cost each case ~5.5 s before its first scrape."""

    def __init__(self, opts):
        self.opts = opts
        self.tmp = short_tmpdir("veer-gates-stack-")
        self.procs = []
        self.logs = {}
        self.exporter = None
        self.prom = None
        exporter_port, prom_port, self.am_port, self.alerts_port = free_ports(4)
        try:
            self.exporter = Exporter(exporter_port)
            self.prom = Prometheus(self, prom_port, exporter_port, ALERT_RULES, self.am_port)
            self.prom.wait_up()
        except BaseException:
            self.close()
            raise

    def start(self, name, args, fast_kill=False):
        p = spawn(name, args, self.tmp, self.logs)
        self.procs.append((name, p))
        return p

    def settle(self, series):
        """The exporter serves exactly `series`, and Prometheus' view of the job shows exactly them."""
        self.exporter.replace(series)
        want = {}
        for k, v in series.items():
            m = SERIES_KEY.match(k)
            want[series_key(m.group(1), dict(re.findall(r'([a-zA-Z_]\w*)="([^"]*)"', m.group(2) or "")))] = float(v)
        last = {}

        def same():
            status, doc = self.prom.query('{job="shop",__name__!~"up|scrape_.+"}')
            if status != 200 or doc.get("status") != "success":
                return False
            got = {series_key(r["metric"].get("__name__", ""), r["metric"]): float(r["value"][1])
                   for r in doc["data"]["result"]}
            last["got"] = got
            return got == want
        try:
            wait_until("Prometheus showing the exporter's new series", same, 6, [("prometheus", self.prom.proc)],
                       interval=0.1)
        except Failure as e:
            raise Failure(f"{e}: want {want}, Prometheus has {last.get('got')}")
        return self.exporter

    def alive(self):
        return self.prom is not None and self.prom.proc.poll() is None

    def log_tail(self, n=6):
        return log_tail(self.logs, n)

    def lost_a_port(self):
        return lost_a_port(self.logs.values())

    def close(self):
        for name, p in self.procs:
            if p.poll() is None:
                p.kill()  # throw-away storage: no need for Prometheus' 2 s shutdown
        for name, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.exporter:
            self.exporter.close()


# --------------------------------------------------------------------------- the receiver's clients

def am_alert(name, status="firing", **labels):
    """One alert as Alertmanager's webhook (version 4) carries it."""
    return {"status": status, "labels": {"alertname": name, **labels},
            "annotations": {"summary": f"{name} is {status}"},
            "startsAt": iso_now(-5),
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else iso_now(),
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up\u0026g0.tab=1",
            "fingerprint": os.urandom(8).hex()}


def am_payload(alerts, version="4"):
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    name = alerts[0]["labels"]["alertname"] if alerts else ""
    return {"receiver": "veer", "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "alerts": alerts, "groupLabels": {"alertname": name}, "commonLabels": common,
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "version": version,
            "groupKey": f'{{}}:{{alertname="{name}"}}', "truncatedAlerts": 0}


def post(port, path, body, token=None, method="POST", auth=None):
    """One request on a fresh connection: (status, body bytes). `auth` overrides the header."""
    headers = {"Content-Type": "application/json", "User-Agent": "gates_test"}
    if auth is not None:
        headers["Authorization"] = auth
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def post_huge(port, token, size, chunked):
    """POST /alerts with a `size`-byte body (a valid webhook JSON carrying a matching firing alert,
    padded) by Content-Length or chunked, stopping the upload as soon as an answer arrives.
    Returns (status or None, how)."""
    payload = am_payload([am_alert("HugeAlert", severity="critical")])
    payload["alerts"][0]["annotations"]["pad"] = ""
    pad = size - len(json.dumps(payload).encode())
    payload["alerts"][0]["annotations"]["pad"] = "x" * max(0, pad)
    body = json.dumps(payload).encode()
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body)}\r\n"
    head = (f"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(head)
        sent = 0
        answered = bool(select.select([s], [], [], 0.3)[0])  # an answer on the head alone
        while not answered and sent < len(body):
            piece = body[sent:sent + 65536]
            data = (b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            answered = bool(select.select([s], [], [], 0)[0])
        if chunked and not answered and sent >= len(body):
            try:
                s.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        try:
            status, _, _, _ = read_http_response(s, time.monotonic() + 5)
        except Failure as e:
            return None, f"{e} after {sent} body bytes sent"
        return status, f"after {sent} of {len(body)} body bytes"
    finally:
        s.close()


# --------------------------------------------------------------------------- traffic, case

class Traffic:
    """GETs through veer on a keep-alive connection, on a thread, until stop()."""

    def __init__(self, v, pause=0.01, limit_s=60):
        self.v = v
        self.pause = pause
        self.limit_s = limit_s
        self.results = []  # (t, status or error name, pool)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        conn = None
        end = time.monotonic() + self.limit_s
        i = 0
        while not self._stop.is_set() and time.monotonic() < end:
            i += 1
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.v.port, timeout=5)
                conn.request("GET", f"/bg/{i}")
                r = conn.getresponse()
                body = r.read()
                self.results.append((t0, r.status, body.split(b" ", 1)[0].decode("latin-1")))
                if (r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self.results.append((t0, type(e).__name__, ""))
                if conn:
                    conn.close()
                conn = None
                self._stop.wait(0.05)
            self._stop.wait(self.pause)
        if conn:
            conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join(10)


class GatesCase:
    """One case's temporary directory, ports, processes, servers and traffic."""

    def __init__(self, name, opts, stack):
        self.name = name
        self.opts = opts
        self.stack = stack
        self.tmp = short_tmpdir(f"veer-gates-{name[:10]}-")
        self.procs = []  # (name, Popen, fast_kill)
        self.logs = {}
        self.servers = []
        self.traffics = []
        self._ports = free_ports(12)  # distinct, for everything this case binds or points at
        self.blue = self.green = None
        self.veer_ = None

    def port(self):
        return self._ports.pop()

    def start(self, name, args, fast_kill=False):
        p = spawn(name, args, self.tmp, self.logs)
        self.procs.append((name, p, fast_kill))
        return p

    def exporter(self, series):
        """The shared exporter, serving exactly `series` (and Prometheus showing them)."""
        return self.stack.settle(series)

    def blackhole(self):
        b = Blackhole(self.port())
        self.servers.append(b)
        return b

    def upstreams(self):
        for name in ("blue", "green"):
            def handler(up, conn, method, target, name=name):
                send_response(conn, 200, f"{name} {method} {target}\n".encode())
                return True
            up = ScriptedUpstream(self.port(), handler)
            self.servers.append(up)
            setattr(self, name, up)
        return self.blue, self.green

    @property
    def prom(self):
        return self.stack.prom

    def alertmanager(self, token_file):
        """An Alertmanager on the port the shared Prometheus sends to, its webhook to veer at
        stack.alerts_port."""
        return Alertmanager(self, self.stack.am_port, f"http://127.0.0.1:{self.stack.alerts_port}/alerts",
                            token_file)

    def token(self):
        """A token file with a trailing newline (stripped by veer and by Alertmanager)."""
        token = "gates-" + base64.urlsafe_b64encode(os.urandom(18)).decode()
        path = os.path.join(self.tmp, "alert-token")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token, path

    def veer(self, overrides=None):
        if self.blue is None:
            self.upstreams()
        base = {
            "listener": {"address": f"127.0.0.1:{self.port()}", "threads": 1},
            "admin": {"socket": os.path.join(self.tmp, "admin.sock"), "http": f"127.0.0.1:{self.port()}"},
            "pools.blue": {"endpoints": [self.blue.address]},
            "pools.green": {"endpoints": [self.green.address]},
            "split": {"stable": "blue", "canary_weight": 0},
            # No active checks, passive ejection out of reach: only the gates judge here.
            "health": {"enabled": False, "eject_after_failures": 1000000},
            "slo": {"window": "10s", "evaluate_every": "200ms", "min_requests": 5, "max_error_rate": 0.5,
                    "max_p95": "5s", "max_p99": "5s", "compare": False, "violations_to_rollback": 1},
            "rollout": {"steps": [50, 100], "step_interval": "1s", "bake": "10m"},
            "timeouts": {"drain": "1s"},
            "state": {"path": os.path.join(self.tmp, "state.json")},
            "log": {"level": "info"},
        }
        self.veer_ = Veer(self, merged(base, overrides))
        return self.veer_.start()

    def traffic(self, v, **kw):
        t = Traffic(v, **kw)
        self.traffics.append(t)
        return t

    def log_tail(self, n=10):
        tails = [log_tail(self.logs, n), self.stack.log_tail() if self.stack else ""]
        return "\n".join(t for t in tails if t)

    def lost_a_port(self, detail):
        return lost_a_port(self.logs.values(), detail) or bool(self.stack and self.stack.lost_a_port())

    def close(self):
        for t in self.traffics:
            t.stop()
        for name, p, fast in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL if fast else signal.SIGTERM)
        for name, p, fast in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for s in self.servers:
            try:
                s.close()
            except OSError:
                pass


def gate(name, url, query, interval="1s", on_no_data="hold", **limit):
    return {"name": name, "url": url, "query": query, **limit, "interval": interval, "on_no_data": on_no_data}


def hold_steady(v, seconds, what, predicate):
    """For `seconds`, every status must satisfy predicate (the "nothing happens" checks)."""
    end = time.monotonic() + seconds
    st = None
    while time.monotonic() < end:
        if v.proc.poll() is not None:
            raise Failure(f"veer exited with {v.proc.returncode} while {what}")
        st = v.status()
        check(predicate(st), f"{what}: {brief(st)}")
        time.sleep(0.1)
    return st


def no_rollback(v, what):
    rb = kinds(v.events(500), "rollback")
    check(not rb, f"{what}: rollback event {json.dumps(rb[-1])[:300] if rb else ''}")


def check_rfc3339(value, what):
    check(isinstance(value, str) and RFC3339.match(value), f"{what}: {value!r} is not an RFC 3339 time")


# --------------------------------------------------------------------------- cases

def case_gate_holds_without_data(c):
    exp = c.exporter({BLUE: 0})  # green's series absent: no data for the canary
    prom = c.prom
    v = c.veer({"[[gates.prometheus]]": [gate("checkout-failures", prom.url, CANARY_Q, max=0.01),
                                         gate("stable-failures", prom.url, STABLE_Q, max=0.01)]})
    traffic = c.traffic(v)
    ok(v, "start")
    st = v.wait_status("progressing at step 0 (weight 50) with gate checkout-failures holding",
                       lambda s: s["state"] == "progressing" and s["step"] == 0 and weight(s) == 50
                       and verdict(s, "checkout-failures") == "holding", 5)
    g = gate_entry(st, "checkout-failures")
    check(g.get("kind") == "prometheus", f"gate kind {g.get('kind')!r}, expected prometheus")
    check(g.get("limit") == "max 0.01", f"gate limit {g.get('limit')!r}, expected 'max 0.01'")
    check(g.get("value") is None, f"holding on no data, but the gate's value is {g.get('value')!r}")
    check(isinstance(g.get("query"), str) and "checkout_errors" in g["query"], f"gate query {g.get('query')!r}")
    v.wait_status("gate stable-failures ({{stable}} = blue, which reports 0) ok with value 0",
                  lambda s: verdict(s, "stable-failures") == "ok" and gate_entry(s, "stable-failures")["value"] == 0, 4)

    # Three step intervals with enough canary traffic: the gate alone keeps it at step 0.
    st = hold_steady(v, 3.0, "holding on the gate's missing data",
                     lambda s: s["state"] == "progressing" and s["step"] == 0 and weight(s) == 50
                     and s["holding"] is True and verdict(s, "checkout-failures") == "holding")
    green_requests = (st.get("pools", {}).get("green") or {}).get("requests", 0)
    check(green_requests >= 5, f"only {green_requests} canary requests in the window: the hold proves nothing")
    evs = v.events(500)
    check(not kinds(evs, "step") and not kinds(evs, "baking") and not kinds(evs, "rollback"),
          f"events while holding: {[(e.get('kind'), e.get('by')) for e in evs]}")

    exp.set(GREEN, 0)
    t_data = time.monotonic()
    st = v.wait_status("gate checkout-failures ok with value 0 once green reports 0",
                       lambda s: verdict(s, "checkout-failures") == "ok"
                       and gate_entry(s, "checkout-failures").get("value") == 0, 5)
    t_ok = time.monotonic() - t_data
    check_rfc3339(gate_entry(st, "checkout-failures").get("checked"), "gate checked")
    v.wait_status("the rollout past step 0 (weight 100)",
                  lambda s: weight(s) == 100 and s["state"] in ("progressing", "baking"), 6)
    t_adv = time.monotonic() - t_data
    evs = v.events(500)
    check(kinds(evs, "step") or kinds(evs, "baking"), f"weight 100 but no step/baking event: "
          f"{[(e.get('kind'), e.get('by')) for e in evs]}")
    no_rollback(v, "after the gate passed")
    samples = v.metrics()
    val = sample(samples, "veer_gate_value", gate="checkout-failures")
    check(val == 0, f"veer_gate_value{{gate=\"checkout-failures\"}} is {val!r}, expected 0")
    traffic.stop()
    return (f"held at step 0 for 3 s with {green_requests} canary requests (gate holding, value null); "
            f"green reports 0: gate ok {t_ok:.2f}s later, weight 100 {t_adv:.2f}s later; {{{{stable}}}} gate ok")


def case_gate_violation_rolls_back(c):
    c.exporter({BLUE: 0, GREEN: 0.5})
    prom = c.prom
    v = c.veer({"[[gates.prometheus]]": [gate("checkout-failures", prom.url, CANARY_Q, max=0.01)]})
    traffic = c.traffic(v)

    hold_steady(v, 2.0, "weight 0: the gate is not judged, nothing may happen",
                lambda s: s["state"] == "idle" and weight(s) == 0)
    no_rollback(v, "weight 0")
    ok(v, "set weight 50")
    t0 = time.monotonic()
    st = v.wait_status("rolled back by the gate", lambda s: s["state"] == "rolled_back" and weight(s) == 0, 5)
    took = time.monotonic() - t0

    rb = kinds(v.events(500), "rollback")
    check(len(rb) == 1, f"{len(rb)} rollback events, expected 1")
    e = rb[0]
    reason = e.get("reason") or ""
    fig = e.get("figures") or {}
    check(e.get("by") == "judge", f"rollback by {e.get('by')!r}, expected judge")
    check("gate checkout-failures" in reason and "0.5" in reason and "max 0.01" in reason,
          f"rollback reason {reason!r}, expected like 'gate checkout-failures: 0.5 > max 0.01'")
    check(fig.get("gate") == "checkout-failures", f"figures.gate {fig.get('gate')!r}")
    check(fig.get("query") == 'max(checkout_errors{version="green"})',
          f"figures.query {fig.get('query')!r}, expected {{{{canary}}}} replaced by green")
    check(fig.get("value") == 0.5, f"figures.value {fig.get('value')!r}, expected 0.5")
    check(is_limit(fig.get("limit"), 0.01, "max"), f"figures.limit {fig.get('limit')!r}, expected 0.01 / 'max 0.01'")

    g = gate_entry(st, "checkout-failures") or {}
    check(g.get("value") == 0.5 and g.get("verdict") == "violation" and g.get("limit") == "max 0.01",
          f"status gate after the rollback: {json.dumps(g)}, expected its last value 0.5, verdict violation")
    check_rfc3339(g.get("checked"), "gate checked")
    samples = v.metrics()
    val = sample(samples, "veer_gate_value", gate="checkout-failures")
    check(val == 0.5, f"veer_gate_value{{gate=\"checkout-failures\"}} is {val!r}, expected 0.5")
    check(metric(samples, "veer_rollbacks_total") >= 1, "veer_rollbacks_total did not count the rollback")
    hold_steady(v, 1.0, "after the rollback", lambda s: s["state"] == "rolled_back" and weight(s) == 0)
    traffic.stop()
    return f"weight 0 for 2 s: nothing; set weight 50: rolled back {took:.2f}s later: {reason!r}"


def case_gate_query_error_holds(c):
    c.exporter({BLUE: 0, GREEN: 0.5})  # a query that worked would violate
    prom = c.prom
    hole = c.blackhole()
    down = c.port()  # nothing listens there
    v = c.veer({"[[gates.prometheus]]": [
        gate("bad-query", prom.url, 'max(checkout_errors{version="{{canary}}"}', max=0.01),
        gate("prom-down", f"http://127.0.0.1:{down}", CANARY_Q, max=0.01),
        gate("prom-stuck", f"http://127.0.0.1:{hole.port}", CANARY_Q, max=0.01)]})
    traffic = c.traffic(v)
    ok(v, "start")
    t0 = time.monotonic()
    v.wait_status("gates bad-query and prom-down in verdict error",
                  lambda s: verdict(s, "bad-query") == "error" and verdict(s, "prom-down") == "error", 5)
    st = v.wait_status("gate prom-stuck in verdict error (the query timed out)",
                       lambda s: verdict(s, "prom-stuck") == "error", 12)
    stuck_s = time.monotonic() - t0
    errors = {}
    for name in ("bad-query", "prom-down", "prom-stuck"):
        g = gate_entry(st, name)
        check(isinstance(g.get("error"), str) and g["error"].strip(), f"gate {name} in error without an error: {g}")
        errors[name] = g["error"]
    check(any(w in errors["bad-query"].lower() for w in ("parse error", "bad_data", "400")),
          f"gate bad-query's error {errors['bad-query']!r} does not pass on Prometheus' parse error")
    check(st["holding"] is True, f"gates in error but status not holding: {brief(st)}")

    samples = v.metrics()
    t_e0 = time.monotonic()
    e0 = {}
    for name in errors:
        val = sample(samples, "veer_gate_errors_total", gate=name)
        check(val is not None and val >= 1, f"veer_gate_errors_total{{gate=\"{name}\"}} is {val!r}")
        e0[name] = val
    st = hold_steady(v, 2.5, "gates in error: the rollout must hold at step 0, no rollback",
                     lambda s: s["state"] == "progressing" and s["step"] == 0 and weight(s) == 50
                     and s["holding"] is True)
    green_requests = (st.get("pools", {}).get("green") or {}).get("requests", 0)
    check(green_requests >= 5, f"only {green_requests} canary requests in the window: the hold proves nothing")
    no_rollback(v, "gates in error")
    samples = v.metrics()
    e1 = {name: sample(samples, "veer_gate_errors_total", gate=name) for name in errors}
    elapsed = time.monotonic() - t_e0
    for name in ("bad-query", "prom-down"):  # one failed query per interval (1 s), give or take one
        check(e1[name] >= e0[name] + max(1, int(elapsed) - 1),
              f"veer_gate_errors_total{{gate=\"{name}\"}} {e0[name]} -> {e1[name]} in {elapsed:.1f}s with interval 1s")
    traffic.stop()
    return (f"held at step 0 for 2.5 s ({green_requests} canary requests); errors {e1}; prom-stuck in error "
            f"{stuck_s:.1f}s after start; bad-query: {errors['bad-query'][:80]!r}")


ALERT_RULES = [
    {"alert": "CheckoutBroken", "expr": 'max(checkout_errors{version="green"}) > 0.5',
     "labels": {"severity": "critical", "service": "shop"},
     "annotations": {"summary": "checkout errors at {{ $value }}"}},
    {"alert": "ShopWarmup", "expr": "vector(1)",  # fires at once; not a match for veer
     "labels": {"severity": "warning", "service": "shop"},
     "annotations": {"summary": "always firing"}},
]


def case_alertmanager_rolls_back(c):
    token, token_file = c.token()
    exp = c.exporter({BLUE: 0, GREEN: 0})  # CheckoutBroken not firing
    prom = c.prom
    alerts_port = c.stack.alerts_port  # where the Alertmanager's webhook goes
    v = c.veer({"gates.alerts": {"listen": f"127.0.0.1:{alerts_port}", "token_file": token_file,
                                 "match": {"severity": "critical"}}})
    wait_until("veer's alerts receiver", lambda: port_open(alerts_port), 5, [("veer", v.proc)])
    traffic = c.traffic(v)
    ok(v, "set weight 50")
    prom.wait_value('count(ALERTS{alertname="CheckoutBroken"})', lambda x: x is None, "CheckoutBroken not active")
    t0 = time.monotonic()
    am = c.alertmanager(token_file)

    # The warning alert goes the whole way (Prometheus -> Alertmanager -> veer): an event only.
    wait_until("the ShopWarmup alert as an event in veer",
               lambda: [e for e in kinds(v.events(500), "alert") if mentions(e, "ShopWarmup")], 10,
               [("veer", v.proc), ("alertmanager", am.proc), ("prometheus", prom.proc)], interval=0.1)
    warm_s = time.monotonic() - t0
    warm = [e for e in kinds(v.events(500), "alert") if mentions(e, "ShopWarmup")][0]
    check(warm.get("by") == "alert", f"alert event by {warm.get('by')!r}, expected alert")
    st = hold_steady(v, 1.0, "a warning alert (no match) must not roll back",
                     lambda s: s["state"] != "rolled_back" and weight(s) == 50)
    no_rollback(v, "after ShopWarmup")

    exp.set(GREEN, 1)
    t_set, wall_set = time.monotonic(), time.time()
    v.wait_status("rolled back by the CheckoutBroken alert",
                  lambda s: s["state"] == "rolled_back" and weight(s) == 0, 10)
    took = time.monotonic() - t_set
    evs = v.events(500)
    rb = kinds(evs, "rollback")
    check(len(rb) == 1, f"{len(rb)} rollback events, expected 1")
    reason = rb[0].get("reason") or ""
    check(rb[0].get("by") == "alert", f"rollback by {rb[0].get('by')!r}, expected alert")
    check("CheckoutBroken" in reason and "critical" in reason and "severity" in reason,
          f"rollback reason {reason!r} should name the alert and its labels")
    fired = [e for e in kinds(evs, "alert") if mentions(e, "CheckoutBroken")]
    check(fired, "no alert event for CheckoutBroken")
    starts = [a.get("startsAt") for a in am.alerts() if (a.get("labels") or {}).get("alertname") == "CheckoutBroken"]
    check(starts, "Alertmanager does not list CheckoutBroken")
    t_start = parse_time(starts[0])
    t_alert_ev, t_rb_ev = parse_time(fired[0]["time"]), parse_time(rb[0]["time"])
    timing = (f"exporter -> rolled_back {took:.2f}s; alert startsAt -> veer's alert event "
              f"{t_alert_ev - t_start:.3f}s, -> rollback event {t_rb_ev - t_start:.3f}s "
              f"(startsAt {t_start - wall_set:+.2f}s after the exporter changed)")
    log(f"     alertmanager_rolls_back timing: {timing}")

    exp.set(GREEN, 0)
    wait_until("the resolved CheckoutBroken as an event in veer",
               lambda: [e for e in kinds(v.events(500), "alert")
                        if mentions(e, "CheckoutBroken") and mentions(e, "resolved")], 10,
               [("veer", v.proc), ("alertmanager", am.proc)], interval=0.1)
    st = v.status()
    check(st["state"] == "rolled_back" and weight(st) == 0, f"after the resolved alert: {brief(st)}")
    check(len(kinds(v.events(500), "rollback")) == 1, "the resolved alert made another rollback event")

    samples = v.metrics()
    got = metric(samples, "veer_alerts_received_total")
    refused = metric(samples, "veer_alerts_refused_total")
    check(any(s[0] == "veer_alerts_received_total" for s in samples), "/metrics has no veer_alerts_received_total")
    check(any(s[0] == "veer_alerts_refused_total" for s in samples), "/metrics has no veer_alerts_refused_total")
    check(got >= 3, f"veer_alerts_received_total {got}, expected >= 3 (warning, firing, resolved)")
    check(refused == 0, f"veer_alerts_refused_total {refused}: Alertmanager's token was refused")
    sent, failed = am.webhook_counts()
    check(failed == 0 and sent >= 3, f"Alertmanager webhook notifications: {sent} sent, {failed} failed")
    traffic.stop()
    return f"ShopWarmup reached veer {warm_s:.1f}s after Alertmanager started (event only); {timing}; resolved: event only"


def case_receiver_refuses_bad_input(c):
    token, token_file = c.token()
    port = c.port()
    v = c.veer({"gates.alerts": {"listen": f"127.0.0.1:{port}", "token_file": token_file,
                                 "match": {"severity": "critical"}}})
    wait_until("veer's alerts receiver", lambda: port_open(port), 5, [("veer", v.proc)])
    ok(v, "set weight 50")
    v.wait_status("canary weight 50", lambda s: weight(s) == 50, 3)

    def snapshot():
        st = v.status()
        samples = v.metrics()
        return ({k: st.get(k) for k in ("state", "canary_weight", "step", "paused", "stable", "canary")},
                v.events(500), metric(samples, "veer_alerts_received_total"),
                metric(samples, "veer_alerts_refused_total"), metric(samples, "veer_rollbacks_total"))

    matching = am_payload([am_alert("CheckoutBroken", severity="critical", service="shop")])
    wrong_same_length = token[:-1] + ("A" if token[-1] != "A" else "B")
    st0, ev0, rec0, ref0, rb0 = snapshot()
    tried = []

    def refused(what, expect, got, extra=""):
        tried.append(f"{what} {got}")
        check(got == expect, f"{what}: answered {got}, expected {expect} {extra}".rstrip())

    refused("no token", 401, post(port, "/alerts", matching)[0])
    refused("wrong token (same length)", 401, post(port, "/alerts", matching, wrong_same_length)[0])
    refused("token plus a byte", 401, post(port, "/alerts", matching, token + "x")[0])
    refused("token minus a byte", 401, post(port, "/alerts", matching, token[:-1])[0])
    refused("Basic scheme", 401, post(port, "/alerts", matching,
                                     auth="Basic " + base64.b64encode(f"veer:{token}".encode()).decode())[0])
    refused("empty Bearer", 401, post(port, "/alerts", matching, auth="Bearer ")[0])
    status, how = post_huge(port, token, 2 << 20, chunked=False)
    refused("2 MiB body (Content-Length)", 413, status, how)
    status, how = post_huge(port, token, 2 << 20, chunked=True)
    refused("2 MiB body (chunked)", 413, status, how)
    refused("malformed JSON", 400, post(port, "/alerts", b'{"version": "4", "alerts": [{"status": "firing"', token)[0])
    refused("not an object", 400, post(port, "/alerts", b'["version", "4"]', token)[0])
    refused("version 3", 400, post(port, "/alerts", dict(matching, version="3"), token)[0])
    refused("no alerts array", 400, post(port, "/alerts", {k: x for k, x in matching.items() if k != "alerts"},
                                         token)[0])
    refused("alerts not an array", 400, post(port, "/alerts", dict(matching, alerts={"a": 1}), token)[0])
    refused("GET /alerts", 405, post(port, "/alerts", None, token, method="GET")[0])
    refused("PUT /alerts", 405, post(port, "/alerts", matching, token, method="PUT")[0])
    refused("POST /other", 404, post(port, "/other", matching, token)[0])
    refused("POST /alerts/x", 404, post(port, "/alerts/x", matching, token)[0])
    n_refused = len(tried)

    st1, ev1, rec1, ref1, rb1 = snapshot()
    check(st1 == st0, f"refused requests changed the state: {st0} -> {st1}")
    check(ev1 == ev0, f"refused requests changed the events: {len(ev0)} -> {len(ev1)}; new: "
          f"{[e for e in ev1 if e not in ev0][:3]}")
    check(rec1 == rec0, f"veer_alerts_received_total {rec0} -> {rec1} after only refused requests")
    check(ref1 - ref0 >= n_refused - 2, f"veer_alerts_refused_total {ref0} -> {ref1} after {n_refused} refused "
          f"requests")
    check(rb1 == rb0, "veer_rollbacks_total changed")

    # A valid alert that does not match: 200, an event, no rollback.
    status, body = post(port, "/alerts", am_payload([am_alert("DiskFilling", severity="warning")]), token)
    check(status == 200 and json.loads(body).get("ok") is True, f"a valid non-matching alert: {status} {body[:200]!r}")
    # A resolved alert that matches: 200, an event, no rollback.
    status, body = post(port, "/alerts", am_payload([am_alert("CheckoutBroken", "resolved", severity="critical")]),
                        token)
    check(status == 200 and json.loads(body).get("ok") is True, f"a resolved matching alert: {status} {body[:200]!r}")
    wait_until("alert events for DiskFilling and the resolved CheckoutBroken", lambda: (
        [e for e in kinds(v.events(500), "alert", "alert") if mentions(e, "DiskFilling")] and
        [e for e in kinds(v.events(500), "alert", "alert") if mentions(e, "CheckoutBroken")]), 3, [("veer", v.proc)])
    hold_steady(v, 0.6, "after a non-matching and a resolved alert", lambda s: s["state"] != "rolled_back"
                and weight(s) == 50)
    no_rollback(v, "non-matching / resolved alerts")

    # A matching firing alert while nothing is judged (weight 0): an event only.
    ok(v, "set weight 0")
    v.wait_status("canary weight 0", lambda s: weight(s) == 0, 3)
    status, body = post(port, "/alerts", am_payload([am_alert("IdleBroken", severity="critical")]), token)
    check(status == 200, f"a matching alert at weight 0: {status} {body[:200]!r}")
    wait_until("an alert event for IdleBroken",
               lambda: [e for e in kinds(v.events(500), "alert") if mentions(e, "IdleBroken")], 3, [("veer", v.proc)])
    hold_steady(v, 0.6, "a matching alert at weight 0", lambda s: s["state"] != "rolled_back" and weight(s) == 0)
    no_rollback(v, "a matching alert at weight 0")

    # And the same receiver does roll back: two alerts in one POST, the second one matching.
    ok(v, "set weight 50")
    v.wait_status("canary weight 50", lambda s: weight(s) == 50, 3)
    before = len(kinds(v.events(500), "alert"))
    status, body = post(port, "/alerts", am_payload([am_alert("QueueSlow", severity="warning"),
                                                     am_alert("PaymentsDown", severity="critical", team="pay")]), token)
    check(status == 200, f"a matching alert at weight 50: {status} {body[:200]!r}")
    t0 = time.monotonic()
    v.wait_status("rolled back by PaymentsDown", lambda s: s["state"] == "rolled_back" and weight(s) == 0, 2)
    took = time.monotonic() - t0
    evs = v.events(500)
    rb = kinds(evs, "rollback")
    check(len(rb) == 1 and rb[0].get("by") == "alert", f"rollback events {rb}, expected one by alert")
    reason = rb[0].get("reason") or ""
    check("PaymentsDown" in reason and "critical" in reason, f"rollback reason {reason!r}")
    check(len(kinds(evs, "alert")) >= before + 2, f"two alerts in one POST but {len(kinds(evs, 'alert')) - before} "
          f"alert events")
    rec = metric(v.metrics(), "veer_alerts_received_total")
    check(rec > rec1, f"veer_alerts_received_total {rec1} -> {rec} after accepted alerts")
    return (f"{n_refused} refused, nothing changed ({'; '.join(tried)}); non-matching, resolved and weight-0 "
            f"alerts: events only; PaymentsDown rolled back in {took * 1000:.0f} ms: {reason[:80]!r}")


def case_gate_min_and_no_data_pass(c):
    orders_green = 'orders_per_second{version="green"}'
    exp = c.exporter({BLUE: 0, GREEN: 0, 'orders_per_second{version="blue"}': 10, orders_green: 10})
    prom = c.prom
    v = c.veer({"[[gates.prometheus]]": [
        gate("orders-flowing", prom.url, 'sum(orders_per_second{version="{{canary}}"})', min=5),
        gate("optional-queue", prom.url, 'max(queue_depth{version="{{canary}}"})', max=100, on_no_data="pass")]})
    traffic = c.traffic(v)
    ok(v, "start")
    st = v.wait_status("both gates ok (optional-queue passing on no data)",
                       lambda s: verdict(s, "orders-flowing") == "ok" and verdict(s, "optional-queue") == "ok", 5)
    g = gate_entry(st, "orders-flowing")
    check(g.get("value") == 10 and g.get("limit") == "min 5", f"gate orders-flowing: {json.dumps(g)}")
    g = gate_entry(st, "optional-queue")
    check(g.get("value") is None, f"gate optional-queue has a value on no data: {json.dumps(g)}")
    v.wait_status("the rollout past step 0 (weight 100)", lambda s: weight(s) == 100, 6)
    exp.set(orders_green, 1)
    t0 = time.monotonic()
    v.wait_status("rolled back: orders below min", lambda s: s["state"] == "rolled_back" and weight(s) == 0, 5)
    took = time.monotonic() - t0
    rb = kinds(v.events(500), "rollback")
    check(len(rb) == 1 and rb[0].get("by") == "judge", f"rollback events {rb}")
    reason, fig = rb[0].get("reason") or "", rb[0].get("figures") or {}
    check("gate orders-flowing" in reason and "min 5" in reason, f"rollback reason {reason!r}")
    check(fig.get("gate") == "orders-flowing" and fig.get("value") == 1 and is_limit(fig.get("limit"), 5, "min"),
          f"rollback figures {fig}")
    check(fig.get("query") == 'sum(orders_per_second{version="green"})', f"figures.query {fig.get('query')!r}")
    traffic.stop()
    return f"advanced to 100 with a pass-on-no-data gate; orders 10 -> 1: rolled back {took:.2f}s later: {reason!r}"


def case_gate_no_data_fail(c):
    c.exporter({BLUE: 0, GREEN: 0})  # heartbeat never reported
    prom = c.prom
    v = c.veer({"[[gates.prometheus]]": [
        gate("must-report", prom.url, 'max(heartbeat{version="{{canary}}"})', min=1, on_no_data="fail")]})
    traffic = c.traffic(v)
    ok(v, "set weight 50")
    t0 = time.monotonic()
    v.wait_status("rolled back: no data with on_no_data = fail",
                  lambda s: s["state"] == "rolled_back" and weight(s) == 0, 5)
    took = time.monotonic() - t0
    rb = kinds(v.events(500), "rollback")
    check(len(rb) == 1 and rb[0].get("by") == "judge", f"rollback events {rb}")
    reason, fig = rb[0].get("reason") or "", rb[0].get("figures") or {}
    check("gate must-report" in reason, f"rollback reason {reason!r}")
    check(fig.get("gate") == "must-report" and fig.get("value") is None, f"rollback figures {fig}")
    traffic.stop()
    return f"set weight 50: rolled back {took:.2f}s later: {reason!r}"


CASES = [
    ("gate_holds_without_data", case_gate_holds_without_data),
    ("gate_violation_rolls_back", case_gate_violation_rolls_back),
    ("gate_query_error_holds", case_gate_query_error_holds),
    ("alertmanager_rolls_back", case_alertmanager_rolls_back),
    ("receiver_refuses_bad_input", case_receiver_refuses_bad_input),
    ("gate_min_and_no_data_pass", case_gate_min_and_no_data_pass),
    ("gate_no_data_fail", case_gate_no_data_fail),
]


def main():
    opts = suite_options(
        __doc__, CASES,
        ("--prometheus", {"help": "the prometheus binary (default: $VEER_PROMETHEUS, PATH, /usr/bin)"}),
        ("--alertmanager", {"help": "the Alertmanager binary (default: $VEER_ALERTMANAGER, "
                                    "prometheus-alertmanager or alertmanager on PATH, /usr/bin)"}))
    if not os.access(opts.veer, os.X_OK):
        return not_run("gates", f"{opts.veer} is not an executable")
    opts.prometheus = find_binary(["prometheus"], opts.prometheus, "VEER_PROMETHEUS")
    opts.alertmanager = find_binary(["prometheus-alertmanager", "alertmanager"], opts.alertmanager,
                                    "VEER_ALERTMANAGER")
    if not opts.prometheus or not opts.alertmanager:
        missing = " and ".join(n for n, b in (("prometheus", opts.prometheus),
                                              ("prometheus-alertmanager", opts.alertmanager)) if not b)
        return not_run("gates", f"{missing} not installed (Debian packages prometheus, prometheus-alertmanager)",
                       skip=f"{missing} not installed")
    t0 = time.monotonic()
    stack = None  # shared by the cases: started for the first, again after it died or lost a port

    def new_case(name):
        nonlocal stack
        if stack is not None and not stack.alive():
            stack.close()
            stack = None
        if stack is None:
            stack = Stack(opts)
        return GatesCase(name, opts, stack)

    def drop_stack():  # its ports too: the Alertmanager case binds two of them
        nonlocal stack
        if stack is not None:
            stack.close()
            shutil.rmtree(stack.tmp, ignore_errors=True)
            stack = None

    passed, failed = run_cases(CASES, opts, new_case, drop_stack)
    if stack is not None:
        stack.close()
        if failed == 0 and not opts.keep:
            shutil.rmtree(stack.tmp, ignore_errors=True)
        else:
            log(f"    kept {stack.tmp}")
    log(f"gates: {passed} passed, {failed} failed ({time.monotonic() - t0:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
