#!/usr/bin/env python3
"""HTTP/2 rows of the end-to-end benchmark (issue 14): h2load -c50 -m10 (h2c, prior knowledge)
through veer, nginx and HAProxy, each one worker or thread, split 90/10 over two backends
(blue, green) on kept-alive connections. Runs are interleaved (veer, nginx, haproxy, veer,
...) so that drift on the shared 2-core box falls on all three; the median of each is
reported with the ratio veer / better peer, and on-CPU microseconds per request of each
proxy's process and of the backends (schedstat) during its runs.

  h1    GET / through veer, nginx (`listen ... http2`, proxy_pass) and HAProxy (`bind ...
        proto h2`) to two HTTP/1.1 veer-upstream backends.
  grpc  gRPC-like unary calls (POST of one 5-byte-prefixed protobuf message, content-type
        application/grpc, te: trailers) through veer (pools `protocol = "h2"`), nginx
        (grpc_pass) and HAProxy (`server ... proto h2`) to one nginx h2c backend (a port for
        blue, one for green) answering 200 application/grpc, one message and the trailer
        grpc-status: 0. Before the runs nghttp checks that the trailer passes each proxy.

    python3 bench/h2_e2e.py [--row h1|grpc|both] [--reps 3] [--requests 100000] [--veer build/veer] [--keep]

Loopback only; every process is stopped at the end. A benchmark, never a test.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = "h2_e2e"  # the prefix of messages and temp dirs; bench/conn_e2e.py sets its own
PROXIES = ("veer", "nginx", "haproxy")
TITLES = {"h1": "h2load -c50 -m10 (h2c, 90/10 to h1 backends)",
          "grpc": "h2load -c50 -m10 gRPC unary (h2c, 90/10 to h2c backends)"}
GRPC_PATH = "/veer.bench.Echo/Unary"
GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]


def grpc_message(proto):
    """A gRPC length-prefixed message: not compressed, 4-byte big-endian length, the bytes."""
    return b"\x00" + len(proto).to_bytes(4, "big") + proto


GRPC_REQUEST = grpc_message(b"\x0a\x05world")  # field 1, a string
GRPC_REPLY = grpc_message(b"\x0a\x0bhello world")  # raw in nginx.conf: no '"', '\\' or '$'


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_port(port, proc, what):
    for _ in range(100):
        if proc.poll() is not None:
            sys.exit(f"{PROG}: {what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{PROG}: {what} did not listen on {port}")


def cpu_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def tool(name):
    return shutil.which(name) or f"/usr/sbin/{name}"


def workers(pid):
    """nginx's workers (they serve), else the process itself."""
    time.sleep(0.5)
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(k) for k in kids] or [pid]


class Stack:
    """The files and processes of one row; stop() ends every process it started."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix=f"veer-{PROG.replace('_', '')}-")
        self.procs = []
        self.port = dict(zip(("blue", "green", "admin") + PROXIES, free_ports(6)))

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data):
        with open(self.path(name), "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return self.path(name)

    def spawn(self, name, args, port):
        log = open(self.path(name + ".log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(port, p, name)
        return p

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if OPTS.keep:
            print(f"{PROG}: logs and configs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def echo_module():
    for d in ("/usr/lib/nginx/modules", "/usr/share/nginx/modules"):
        if os.path.exists(f"{d}/ngx_http_echo_module.so"):
            return f"{d}/ngx_http_echo_module.so"
    sys.exit("h2_e2e: nginx's echo module is missing (libnginx-mod-http-echo, a dependency of nginx-light)")


def nginx_conf(s, name, workers_n, http, main=""):
    """nginx.conf NAME in the stack's directory, its own pid and temp paths; HTTP is bytes."""
    d = s.path(name)
    os.makedirs(d, exist_ok=True)
    head = main + f"""worker_processes {workers_n};\ndaemon off;\npid {d}/nginx.pid;
error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
  uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc; keepalive_requests 1000000;
"""
    return s.write(f"{name}/nginx.conf", head.encode() + http + b" }\n")


def start_nginx(s, name, workers_n, http, port, main=""):
    conf = nginx_conf(s, name, workers_n, http, main)
    d = s.path(name)
    return s.spawn(name, [tool("nginx"), "-p", d, "-c", conf, "-e", f"{d}/error.log"], port)


def start_h1_backends(s):
    return [s.spawn(n, [OPTS.upstream, "--name", n, "--port", str(s.port[n])], s.port[n]).pid
            for n in ("blue", "green")]


def start_grpc_backend(s):
    """One nginx (--backend-workers) answering like a gRPC server on blue's and green's ports. It
    reads the request first (echo_read_request_body), as a gRPC server reads a unary call's
    message: `return` answers before the body and resets the stream after, which nginx's
    grpc_pass takes for a frame on an unknown stream, a 502, and the server marked down."""
    assert not set(b'"\\$') & set(GRPC_REPLY)
    loc = (b'location / { default_type application/grpc; add_trailer grpc-status 0 always;'
           b' echo_read_request_body; echo -n "' + GRPC_REPLY + b'"; }')
    http = b"".join(b"  server { listen 127.0.0.1:%d http2; http2_max_concurrent_streams 1000; %s }\n"
                    % (s.port[n], loc) for n in ("blue", "green"))
    main = f"load_module {echo_module()};\n"
    p = start_nginx(s, "backend", OPTS.backend_workers, http, s.port["green"], main)
    wait_port(s.port["blue"], p, "backend")
    return workers(p.pid)


def start_veer(s, h2):
    proto = '\nprotocol = "h2"' if h2 else ""
    P, t = s.port, s.tmp
    conf = s.write("veer.toml", f"""[listener]\naddress = "127.0.0.1:{P['veer']}"\nthreads = 1\n
[admin]\nsocket = "{t}/veer.sock"\nhttp = "127.0.0.1:{P['admin']}"\n
[pools.blue]\nendpoints = ["127.0.0.1:{P['blue']}"]{proto}
[pools.green]\nendpoints = ["127.0.0.1:{P['green']}"]{proto}\n
[split]\ncanary_weight = 10\n[slo]\nmin_requests = 20\nmax_p95 = "2s"\nmax_p99 = "5s"\ndry_run = true\n
[state]\npath = "{t}/state.json"\n[log]\nlevel = "warn"\n""")
    return s.spawn("veer", [OPTS.veer, "--config", conf], P["veer"]).pid


def start_nginx_proxy(s, grpc):
    P = s.port
    up = (f"  upstream app {{ server 127.0.0.1:{P['blue']} weight=9; server 127.0.0.1:{P['green']} weight=1;"
          " keepalive 256; keepalive_requests 1000000; }\n")
    loc = ("grpc_pass grpc://app;" if grpc else
           'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";')
    http = up + f"  server {{ listen 127.0.0.1:{P['nginx']} http2; location / {{ {loc} }} }}\n"
    return workers(start_nginx(s, "nginx", 1, http.encode(), P["nginx"]).pid)[0]


def start_haproxy(s, h2):
    P, proto = s.port, " proto h2" if h2 else ""
    conf = s.write("haproxy.cfg", f"""global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode http
    option http-keep-alive\n    http-reuse always
    timeout connect 2s\n    timeout client 60s\n    timeout server 30s
frontend fe\n    bind 127.0.0.1:{P['haproxy']} proto h2\n    default_backend app
backend app\n    balance roundrobin\n    server blue 127.0.0.1:{P['blue']} weight 90{proto}
    server green 127.0.0.1:{P['green']} weight 10{proto}
""")
    return s.spawn("haproxy", [tool("haproxy"), "-f", conf], P["haproxy"]).pid


def check_grpc(s, name, port):
    """One call with nghttp: 200 application/grpc in the head, grpc-status: 0 after the DATA."""
    out = subprocess.run(["nghttp", "-v", "-d", s.path("request.bin")] + GRPC_HEADERS
                         + [f"http://127.0.0.1:{port}{GRPC_PATH}"], capture_output=True, text=True).stdout
    head, data, trailers = out.partition("recv DATA frame")
    if not (data and ":status: 200" in head and "content-type: application/grpc" in head
            and re.search(r"recv \(stream_id=\d+\) grpc-status: 0\n", trailers)):
        sys.exit(f"h2_e2e: {name}: no 200 application/grpc answer with trailer grpc-status: 0:\n{out[-1500:]}")


def h2load(s, row, port):
    args = ["h2load", "-n", str(OPTS.requests), "-c", "50", "-m", "10", "-t", "1"]
    if row == "grpc":
        args += ["-d", s.path("request.bin")] + GRPC_HEADERS
    return args + [f"http://127.0.0.1:{port}{GRPC_PATH if row == 'grpc' else '/'}"]


def run_h2load(s, row, name, port):
    """Requests per second of one run; exits with h2load's counts unless all answered 2xx."""
    out = subprocess.run(h2load(s, row, port), capture_output=True, text=True).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    n = OPTS.requests
    if not m or f"{n} succeeded" not in out or f"status codes: {n} 2xx" not in out:
        counts = "\n".join(re.findall(r"^(?:requests|status codes):.*$", out, re.M))
        sys.exit(f"h2_e2e: {row} {name}: h2load failed:\n{counts or out[-800:]}")
    return float(m.group(1))


def measure(s, row, pids, backend):
    """Interleaved runs: {proxy: [(req/s, proxy µs/request, backend µs/request)]}."""
    runs = {n: [] for n in PROXIES}
    for _ in range(OPTS.reps):
        for name in PROXIES:
            before, b_before = cpu_ns(pids[name]), sum(cpu_ns(b) for b in backend)
            rate = run_h2load(s, row, name, s.port[name])
            used, b_used = cpu_ns(pids[name]) - before, sum(cpu_ns(b) for b in backend) - b_before
            runs[name].append((rate, used / 1000 / OPTS.requests, b_used / 1000 / OPTS.requests))
    return runs


def report(row, runs):
    med = {n: [statistics.median(r[i] for r in runs[n]) for i in range(3)] for n in PROXIES}
    print(f"| {TITLES[row]} | req/s (median of {OPTS.reps}) | on-CPU µs/request"
          " | backends' on-CPU µs/request |")
    print("|---|---|---|---|")
    for n in ("nginx", "haproxy", "veer"):
        print(f"| {n} | {med[n][0]:,.0f} | {med[n][1]:.1f} | {med[n][2]:.1f} |")
    print(f"| veer ÷ better peer | {med['veer'][0] / max(med['nginx'][0], med['haproxy'][0]):.2f} | | |")


def veer_grpc_codes(s):
    """veer's own count of the calls, by pool and grpc-status, from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{s.port['admin']}/metrics", timeout=5).read().decode()
    calls = {}
    metric = r'^veer_grpc_calls_total\{pool="(\w+)",[^}]*code="(\w+)"[^}]*\} (\S+)'
    for pool, code, v in re.findall(metric, text, re.M):
        calls[f"{pool} {code}"] = calls.get(f"{pool} {code}", 0) + int(float(v))
    return ", ".join(f"{k}: {v}" for k, v in sorted(calls.items())) or "none"


def run_row(row):
    s = Stack()
    grpc = row == "grpc"
    try:
        s.write("request.bin", GRPC_REQUEST)
        backend = start_grpc_backend(s) if grpc else start_h1_backends(s)
        pids = {"veer": start_veer(s, grpc), "nginx": start_nginx_proxy(s, grpc),
                "haproxy": start_haproxy(s, grpc)}
        if grpc:
            for name in ("blue", "green") + PROXIES:
                check_grpc(s, name, s.port[name])
        report(row, measure(s, row, pids, backend))
        if grpc:
            print(f"\nveer_grpc_calls_total (pool code: calls): {veer_grpc_codes(s)}")
    finally:
        s.stop()


def main():
    global OPTS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", choices=("h1", "grpc", "both"), default="both")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--veer", default=os.path.join(ROOT, "build/veer"))
    ap.add_argument("--upstream", default=os.path.join(ROOT, "build/veer-upstream"))
    ap.add_argument("--keep", action="store_true", help="keep each row's directory (configs, logs)")
    ap.add_argument("--backend-workers", type=int, default=1, help="the gRPC row's nginx backend (default 1)")
    OPTS = ap.parse_args()
    for t in ("h2load", "nghttp", "nginx", "haproxy"):
        if not os.path.exists(tool(t)):
            sys.exit(f"h2_e2e: {t} is missing (scripts/deps bench)")
    for i, row in enumerate(("h1", "grpc") if OPTS.row == "both" else (OPTS.row,)):
        if i:
            print()
        run_row(row)


OPTS = None

if __name__ == "__main__":
    main()
