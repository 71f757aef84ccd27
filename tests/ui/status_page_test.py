#!/usr/bin/env python3
"""End-to-end browser test of veer's status page (GET / on admin.http).

Starts two veer-upstream processes (blue, green) and veer on free loopback ports with a
config written into a temporary directory (canary weight 50), sends requests through
veer, then loads the status page in headless Chromium and checks that the rendered DOM
shows the live figures: the rollout state, the canary weight, a row per pool whose
request count matches what was sent, and the endpoint addresses. It also takes a
screenshot and checks that it is a PNG of the requested size.

Usage:
  tests/ui/status_page_test.py --veer build/veer --upstream build/veer-upstream
                               [--requests 300] [--screenshot /tmp/veer-status.png]

Python standard library only, plus Debian's `chromium` (scripts/deps test installs it).
Without Chromium the test fails, unless VEER_ALLOW_SKIP=1: then it prints
"SKIP: chromium not installed" and exits 0. Everything listens on 127.0.0.1 only; every
wait is bounded; the processes it starts are stopped by PID.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from loopback import Failure, free_ports, http_get, log, lost_a_port, port_open, stop, wait_until  # noqa: E402

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_TIMEOUT_S = 120  # one page load, virtual time included, on a busy 2-core machine


def admin_command(path, line):
    """One command on the admin socket: the JSON answer."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def check(cond, msg):
    if not cond:
        raise Failure(msg)
    log("ok   " + msg)


class StatusDom(HTMLParser):
    """The parts of the status page this test reads: text of #state, #weight, #updated,
    #verdict and #roles, and the cells of every `#pools tbody tr.pool` row."""

    IDS = ("state", "weight", "updated", "verdict", "roles", "paused", "history_points", "marks")
    VOID = {"br", "meta", "img", "input", "hr", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text = {}
        self.pools = {}  # name -> list of cell texts
        self._stack = []  # (tag, id or None)
        self._in_pools_table = False
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "pools":
            self._in_pools_table = True
        if self._in_pools_table and tag == "tr" and "pool" in (a.get("class") or "").split():
            self._row = a.get("data-pool")
            self.pools[self._row] = []
        if self._row is not None and tag == "td":
            self._cell = []
        if self._cell is not None and tag == "br":
            self._cell.append("\n")
        if tag in self.VOID:
            return
        eid = a.get("id")
        self._stack.append((tag, eid))
        if eid in self.IDS:
            self.text.setdefault(eid, "")

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if self._row is not None and tag == "td" and self._cell is not None:
            self.pools[self._row].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr":
            self._row = None
        if tag == "table":
            self._in_pools_table = False
        # Pop to the matching tag (the page's HTML is well formed; be lenient anyway).
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, eid in self._stack:
            if eid in self.IDS:
                self.text[eid] += data


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(chromium, tmp, url, extra):
    """Runs headless Chromium once, in its own process group (its helpers die with it)."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--user-data-dir=" + profile, "--virtual-time-budget=5000"] + extra + [url]
    err_path = os.path.join(tmp, "chromium.stderr")
    with open(err_path, "ab") as err:
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=CHROMIUM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=10)
            raise Failure(f"chromium did not finish within {CHROMIUM_TIMEOUT_S}s: {' '.join(args)}")
        finally:
            # Helpers left behind in the group we created (the browser itself has exited).
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    if p.returncode != 0:
        raise Failure(f"chromium exited with {p.returncode}; stderr in {err_path}:\n" + tail(err_path))
    return out.decode("utf-8", "replace")


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no output)"


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def number(cell, what):
    try:
        return float(cell.rstrip("%"))
    except ValueError:
        raise Failure(f"{what}: {cell!r} is not a number")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--veer", required=True)
    ap.add_argument("--upstream", required=True, help="the veer-upstream binary")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--screenshot", help="keep the screenshot at this path (default: temporary)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = ap.parse_args()

    chromium = find_chromium()
    if not chromium:
        if os.environ.get("VEER_ALLOW_SKIP") == "1":
            log("SKIP: chromium not installed")
            return 0
        log("FAIL: chromium not installed (scripts/deps test installs it; VEER_ALLOW_SKIP=1 skips this test)")
        return 1
    for b in (opts.veer, opts.upstream):
        if not os.access(b, os.X_OK):
            log(f"FAIL: {b} is not an executable")
            return 1

    # A short directory: the admin socket path must fit in sun_path.
    base = tempfile.gettempdir() if len(tempfile.gettempdir()) < 60 else "/tmp"
    tmp = tempfile.mkdtemp(prefix="veer-ui-", dir=base)
    procs = []  # (name, Popen)
    logs = {}
    try:
        listen, admin, blue_port, green_port = free_ports(4)

        def start(name, args):
            path = os.path.join(tmp, name + ".log")
            logs[name] = path
            with open(path, "wb") as f:
                p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs.append((name, p))
            return p

        start("blue", [opts.upstream, "--name", "blue", "--port", str(blue_port)])
        start("green", [opts.upstream, "--name", "green", "--port", str(green_port)])
        wait_until("veer-upstream blue and green", lambda: port_open(blue_port) and port_open(green_port), 10, procs)

        cfg = os.path.join(tmp, "veer.toml")
        with open(cfg, "w") as f:
            f.write(f"""# written by tests/ui/status_page_test.py
[listener]
address = "127.0.0.1:{listen}"
threads = 1

[admin]
socket = "{tmp}/veer.sock"
http = "127.0.0.1:{admin}"

[pools.blue]
endpoints = ["127.0.0.1:{blue_port}"]

[pools.green]
endpoints = ["127.0.0.1:{green_port}"]

[split]
stable = "blue"
canary_weight = 50

[health]
interval = "1s"

[slo]
window = "120s"                 # every request of the test stays in the window
min_requests = 50

[state]
path = "{tmp}/state.json"

[log]
level = "warn"
""")
        start("veer", [opts.veer, "--config", cfg])
        wait_until("veer's admin /healthz", lambda: http_get(admin, "/healthz", timeout=1)[0] == 200, 15, procs)
        wait_until("veer's listener", lambda: port_open(listen), 5, procs)

        # Traffic: one keep-alive connection, reopened if veer closes it.
        sent = {"blue": 0, "green": 0}
        conn = None
        for i in range(opts.requests):
            for attempt in range(2):
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
                try:
                    conn.request("GET", f"/ui-test/{i}")
                    r = conn.getresponse()
                    body = r.read().decode("utf-8", "replace")
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = None
                    if attempt:
                        raise
            if r.status != 200:
                raise Failure(f"request {i} through veer: status {r.status}: {body[:200]!r}")
            name = body.split(" ", 1)[0]
            if name not in sent:
                raise Failure(f"request {i} through veer: unexpected answer {body[:200]!r}")
            sent[name] += 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        if conn:
            conn.close()
        log(f"sent {opts.requests} requests through veer: blue {sent['blue']}, green {sent['green']}")
        check(sent["blue"] > 0 and sent["green"] > 0, "canary_weight 50 sends traffic to both pools")

        # Two operator events before the page opens: the chart must mark them (SPEC 12).
        for line in ("set weight 40", "set weight 50"):
            answer = admin_command(os.path.join(tmp, "veer.sock"), line)
            check(answer.get("ok") is True, f"{line}: {answer}")

        # veer's own history has every request sent, second by second.
        def history_total():
            code, body, _ = http_get(admin, "/history")
            h = json.loads(body) if code == 200 else {}
            got = sum(sum(p["requests"]) for p in h.get("pools", {}).values())
            return h if got == opts.requests and len(h["t"]) >= 2 else None
        hist = wait_until("GET /history holding every request sent", history_total, 10, procs)
        check(len(hist["canary_weight"]) == len(hist["t"]) and hist["canary_weight"][-1] == 50,
              f"/history's canary weight per second ends at 50 ({hist['canary_weight'][-5:]})")
        check(sum(1 for e in hist["events"] if e["kind"] == "weight") == 2,
              f"/history carries the events ({[e['kind'] for e in hist['events']]})")

        status_code, raw, _ = http_get(admin, "/status")
        check(status_code == 200, "GET /status answers 200")
        status = json.loads(raw)

        # The page fetches /status and renders it; virtual time lets that run.
        url = f"http://127.0.0.1:{admin}/"
        dom = None
        for attempt in range(3):
            html = run_chromium(chromium, tmp, url, ["--dump-dom"])
            dom = StatusDom()
            dom.feed(html)
            dom.close()
            if dom.pools:
                break
            log(f"note: the page had not rendered the pools yet (attempt {attempt + 1}); loading again")
        with open(os.path.join(tmp, "dom.html"), "w") as f:
            f.write(html)

        points = dom.text.get("history_points", "").strip()
        check(points.endswith("points from veer's history") and int(points.split()[0]) >= 2,
              f"the chart opens full from /history ({points!r})")
        marks = dom.text.get("marks", "")
        check(marks.count("weight") == 2, f"the chart marks both weight events ({marks!r})")

        updated = dom.text.get("updated", "").strip()
        check(updated.startswith("updated "), f"#updated shows a fresh update ({updated!r})")
        check("unreachable" not in updated, "the page reached /status")
        state = dom.text.get("state", "").strip()
        check(state == status["state"] == "idle", f"#state shows the rollout state {state!r} (status: {status['state']!r})")
        weight = dom.text.get("weight", "").strip()
        check(weight == "50%", f"#weight shows the canary weight 50% (got {weight!r})")
        roles = dom.text.get("roles", "").strip()
        check("stable blue" in roles and "canary green" in roles, f"#roles names stable and canary ({roles!r})")

        check(set(dom.pools) == {"blue", "green"}, f"one pool row each for blue and green (got {sorted(dom.pools)})")
        ports = {"blue": blue_port, "green": green_port}
        total = 0
        for name in ("blue", "green"):
            cells = dom.pools[name]
            # pool, role, requests, rps, error rate, p50, p95, p99, endpoints
            check(len(cells) == 9, f"{name}: 9 cells in its row (got {len(cells)}: {cells})")
            check(cells[0] == name, f"{name}: the row names the pool")
            role = "stable" if name == "blue" else "canary"
            check(cells[1] == role, f"{name}: role {role!r} (got {cells[1]!r})")
            requests = int(number(cells[2], f"{name} requests"))
            total += requests
            # The page renders the window's count; every request sent is in the window.
            slack = max(3, sent[name] // 50)
            check(requests > 0 and abs(requests - sent[name]) <= slack,
                  f"{name}: {requests} requests shown, {sent[name]} sent (within {slack})")
            check(abs(requests - status["pools"][name]["requests"]) <= slack,
                  f"{name}: the page agrees with /status ({status['pools'][name]['requests']})")
            check(number(cells[4], f"{name} error rate") == 0.0, f"{name}: error rate 0.00% ({cells[4]})")
            for col, label in ((3, "rps"), (5, "p50"), (6, "p95"), (7, "p99")):
                number(cells[col], f"{name} {label}")
            check(f"127.0.0.1:{ports[name]}" in cells[8] and "healthy" in cells[8],
                  f"{name}: endpoint 127.0.0.1:{ports[name]} shown healthy ({cells[8]!r})")
        check(abs(total - opts.requests) <= max(5, opts.requests // 50),
              f"the pool rows add up to the {opts.requests} requests sent (got {total})")

        shot = opts.screenshot or os.path.join(tmp, "status.png")
        if os.path.exists(shot):
            os.remove(shot)
        run_chromium(chromium, tmp, url, ["--screenshot=" + os.path.abspath(shot), "--window-size=1200,900",
                                          "--hide-scrollbars"])
        size = png_size(shot) if os.path.exists(shot) else None
        check(size == (1200, 900) and os.path.getsize(shot) > 10_000,
              f"screenshot {shot}: a 1200x900 PNG ({size}, {os.path.getsize(shot) if os.path.exists(shot) else 0} bytes)")

        log(f"PASS: status page shows state {state}, weight {weight}, blue {dom.pools['blue'][2]} and "
            f"green {dom.pools['green'][2]} requests")
        return 0
    except Failure as e:
        if lost_a_port(logs.values()):
            log(f"note: a port was taken by another test before it was bound ({e})")
            return PORT_TAKEN
        log(f"FAIL: {e}")
        for name, path in logs.items():
            log(f"--- {name} log (last lines) ---\n{tail(path)}")
        return 1
    finally:
        stop(reversed(procs))
        if opts.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


PORT_TAKEN = 75


if __name__ == "__main__":
    for _ in range(3):  # again on other ports when one was taken under us
        rc = main()
        if rc != PORT_TAKEN:
            break
    sys.exit(1 if rc == PORT_TAKEN else rc)
