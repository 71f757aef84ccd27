#!/usr/bin/env python3
"""HTTP/2 row of the end-to-end benchmark (issue 14): h2load -c50 -m10 through veer, nginx
(`listen ... http2`, h2c with prior knowledge) and HAProxy (`bind ... proto h2`), each one
worker or thread, in front of the same two HTTP/1.1 veer-upstream backends split 90/10 over
keep-alive connections. Runs are interleaved (veer, nginx, haproxy, veer, ...) so that
drift on the shared 2-core box falls on all three; the median of each is reported with the
ratio veer / better peer, and on-CPU microseconds per request of each proxy's process
(schedstat) during its runs.

    python3 bench/h2_e2e.py [--reps 3] [--requests 100000] [--veer build/veer]

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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
            sys.exit(f"h2_e2e: {what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"h2_e2e: {what} did not listen on {port}")


def cpu_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--veer", default=os.path.join(ROOT, "build/veer"))
    ap.add_argument("--upstream", default=os.path.join(ROOT, "build/veer-upstream"))
    opts = ap.parse_args()
    for tool in ("h2load", "nginx", "haproxy"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"h2_e2e: {tool} is missing (scripts/deps bench)")
    tmp = tempfile.mkdtemp(prefix="veer-h2e2e-")
    blue, green, p_veer, p_nginx, p_haproxy, admin = free_ports(6)
    procs = []

    def spawn(name, args):
        log = open(os.path.join(tmp, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append(p)
        return p

    try:
        for name, port in (("blue", blue), ("green", green)):
            wait_port(port, spawn(name, [opts.upstream, "--name", name, "--port", str(port)]), name)
        with open(os.path.join(tmp, "veer.toml"), "w") as f:
            f.write(f"""[listener]\naddress = "127.0.0.1:{p_veer}"\nthreads = 1\n
[admin]\nsocket = "{tmp}/veer.sock"\nhttp = "127.0.0.1:{admin}"\n
[pools.blue]\nendpoints = ["127.0.0.1:{blue}"]\n[pools.green]\nendpoints = ["127.0.0.1:{green}"]\n
[split]\ncanary_weight = 10\n[slo]\nmin_requests = 20\nmax_p95 = "2s"\nmax_p99 = "5s"\ndry_run = true\n
[state]\npath = "{tmp}/state.json"\n[log]\nlevel = "warn"\n""")
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes 1;\ndaemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/px; fastcgi_temp_path {tmp}/fc;
  uwsgi_temp_path {tmp}/uw; scgi_temp_path {tmp}/sc; keepalive_requests 1000000; http2_max_requests 1000000;
  upstream app {{ server 127.0.0.1:{blue} weight=9; server 127.0.0.1:{green} weight=1; keepalive 256;
    keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{p_nginx} http2;
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
        with open(os.path.join(tmp, "haproxy.cfg"), "w") as f:
            f.write(f"""global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode http\n    option http-keep-alive
    http-reuse always\n    timeout connect 2s\n    timeout client 60s\n    timeout server 30s
frontend fe\n    bind 127.0.0.1:{p_haproxy} proto h2\n    default_backend app
backend app\n    balance roundrobin\n    server blue 127.0.0.1:{blue} weight 90\n    server green 127.0.0.1:{green} weight 10
""")
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        haproxy_bin = shutil.which("haproxy") or "/usr/sbin/haproxy"
        targets = {
            "veer": (p_veer, spawn("veer", [opts.veer, "--config", os.path.join(tmp, "veer.toml")])),
            "nginx": (p_nginx, spawn("nginx", [nginx_bin, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"),
                                               "-e", os.path.join(tmp, "nginx-error.log")])),
            "haproxy": (p_haproxy, spawn("haproxy", [haproxy_bin, "-f", os.path.join(tmp, "haproxy.cfg")])),
        }
        for name, (port, p) in targets.items():
            wait_port(port, p, name)
        time.sleep(0.5)
        pid = {n: p.pid for n, (port, p) in targets.items()}
        kids = subprocess.run(["pgrep", "-P", str(pid["nginx"])], capture_output=True, text=True).stdout.split()
        if kids:
            pid["nginx"] = int(kids[0])  # the worker serves
        rates = {n: [] for n in targets}
        cpu = {n: [] for n in targets}
        for rep in range(opts.reps):
            for name, (port, p) in targets.items():
                before = cpu_ns(pid[name])
                out = subprocess.run(["h2load", "-n", str(opts.requests), "-c", "50", "-m", "10", "-t", "1",
                                      f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
                used = cpu_ns(pid[name]) - before
                m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
                ok = f"{opts.requests} succeeded" in out
                if not m or not ok:
                    sys.exit(f"h2_e2e: {name}: h2load failed:\n{out[-800:]}")
                rates[name].append(float(m.group(1)))
                cpu[name].append(used / 1000 / opts.requests)
        med = {n: statistics.median(v) for n, v in rates.items()}
        better = max(med["nginx"], med["haproxy"])
        print("| h2load -c50 -m10 (h2c, 90/10 to h1 backends) | req/s (median of %d) | on-CPU µs/request |" % opts.reps)
        print("|---|---|---|")
        for n in ("nginx", "haproxy", "veer"):
            print(f"| {n} | {med[n]:,.0f} | {statistics.median(cpu[n]):.1f} |")
        print(f"| veer ÷ better peer | {med['veer'] / better:.2f} | |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
