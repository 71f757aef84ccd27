#!/usr/bin/env python3
"""New connections and TLS rows of the end-to-end benchmark (issue 16): wrk (and openssl s_time
for resumption) at c50 through veer, nginx and HAProxy, each one worker or thread, split 90/10
over two HTTP/1.1 veer-upstream backends (blue, green; one thread each) on kept-alive upstream
connections. Runs are interleaved (veer, nginx, haproxy, veer, ...) so that drift on the
shared 2-core box falls on all three; each table gives the median rate of each proxy with, in
parentheses, the on-CPU microseconds of its process (nginx: its worker; schedstat of every
thread) per request or connection during its runs, then the backends' on-CPU µs per request.
"veer ÷ better" is veer's rate over the better peer's, and in parentheses veer's CPU per
request or connection over the lower peer's (below 1: veer spends less).

  close      wrk -t1 -c50 -d S -H "Connection: close" http://...: plaintext, every request on a
             new connection (wrk reconnects after each answer); conn/s = req/s.
  tls        wrk -t1 -c50 -d S https://...: TLS keep-alive, handshakes only at the start.
  handshake  wrk -t1 -c50 -d S -H "Connection: close" https://...: a full TLS handshake per
             request (wrk never offers a session or a ticket). TLS 1.3, X25519, ECDSA P-256.
  resume     K (--resume-clients, default 8) parallel `openssl s_time -connect 127.0.0.1:P
             -reuse -www / -time S -tls1_3`: each opens one connection for a session, then
             connects again and again resuming it (TLS 1.3 PSK with (EC)DHE, a ticket; no
             certificate signature), sends s_time's `GET / HTTP/1.0` and reads to the close. A
             connection per request. conn/s is the sum over the K clients of connections / wall
             time of the client; each table notes the share of connections s_time saw resumed
             ('r' in its progress line). --resume-tls 1.2 runs the row on TLS 1.2 instead.
             s_time is sequential (one connection at a time each), so K clients are K
             connections in flight, not 50. --resume-control adds a line of `s_time -new`
             runs (full handshakes by the same client) to compare with.

Before the TLS rows `openssl s_client` checks each proxy: TLS 1.3, the cipher, the group,
ALPN http/1.1 when h2 is offered too, 200 to s_time's HTTP/1.0 request, the tickets sent, and
that the session it saved (-sess_out) is resumed by a second connection (-sess_in).

TLS, the same on the three, HTTP/1.1 only (no h2 in ALPN), one self-signed ECDSA P-256
certificate made with openssl in the row's directory (CN=localhost):
  - protocols TLS 1.2 and 1.3; TLS 1.2 suites proxy/tls.cpp's tls12_ciphers (ECDHE + AEAD),
    server preference; TLS 1.3 suites and groups OpenSSL's defaults (X25519 first).
  - veer: listener.tls = { cert, key }, listener.http2 = false (also on the plaintext row).
    Session tickets: OpenSSL's defaults (on, stateless; OpenSSL's server session cache on,
    which TLS 1.3 with stateless tickets does not use).
  - nginx: `listen ... ssl` (no http2), ssl_certificate / ssl_certificate_key, ssl_protocols
    TLSv1.2 TLSv1.3, ssl_ciphers, ssl_prefer_server_ciphers on, ssl_session_tickets on (its
    default; a random key per start), ssl_session_cache unset (its default `none`: no server
    cache, tickets only).
  - HAProxy: `bind ... ssl crt FILE alpn http/1.1 ssl-min-ver TLSv1.2 ciphers ...` (FILE holds
    the certificate and the key), tickets on (no no-tls-tickets), tune.ssl.cachesize 20000
    (its default: its shared session cache).
  All three send OpenSSL's default number of TLS 1.3 tickets: two after a full handshake, one
  after a resumption (the check counts them). Nothing differs between the rows: the defaults
  already have tickets on, so the resume row needs no other configuration.

--memory adds a section: VmRSS of each proxy's serving process before and while holding
--idle-conns (default 1000) TLS keep-alive connections that each completed one GET / (bench/
e2e_lib/idle_conns.py --tls), right after the last was answered and 7 s and 12 s later (veer
parks an idle connection after 1 s and trims after 5), as growth per connection; issue 16's
target is veer ≤ 20 KiB. --memory-plain does the same for veer alone with --idle-plain
(default 10000) plaintext connections, right after the last answer and 2 s and 7 s later
(opened one after another, the last are a few ms old at the first sample); target ≤ 1 KB.

    python3 bench/conn_e2e.py [--row close|tls|handshake|resume|all|none] [--reps 3]
        [--duration 5] [--resume-clients 8] [--resume-tls 1.3|1.2] [--resume-control]
        [--memory] [--idle-conns 1000] [--memory-plain] [--idle-plain 10000] [--veer build/veer] [--upstream build/veer-upstream] [--keep]

Loopback only; every process is stopped at the end. A benchmark, never a test.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2_e2e as h2e  # noqa: E402
from h2_e2e import PROXIES, ROOT, Stack, cpu_ns, start_h1_backends, start_nginx, tool, workers  # noqa: E402
from h2_idle import rss_kib  # noqa: E402

PROG = "conn_e2e"
ROWS = ("close", "tls", "handshake", "resume")
NAMES = {"nginx": "nginx", "haproxy": "HAProxy", "veer": "veer"}
# proxy/tls.cpp's tls12_ciphers
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                 "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
S_TIME_REQUEST = b"GET / HTTP/1.0\r\n\r\n"  # what `s_time -www /` sends
IDLE_SETTLE = 7
IDLE_LATER = 12  # veer's buffer pool frees what no request needed over two 5 s sweeps


def title(row):
    d = f"median of {OPTS.reps} × {OPTS.duration} s"
    return {"close": f"close: wrk -t1 -c50 `Connection: close`, plaintext ({d})",
            "tls": f"tls: wrk -t1 -c50 https, keep-alive ({d})",
            "handshake": f"handshake: wrk -t1 -c50 https `Connection: close`, full handshakes ({d})",
            "resume": f"resume: {OPTS.resume_clients} × openssl s_time -reuse, TLS {OPTS.resume_tls}"
                      f" tickets ({d})"}[row]


def unit(row):
    return {"close": "conn/s (µs/conn)", "tls": "req/s (µs/request)",
            "handshake": "handshakes/s (µs/conn)", "resume": "resumptions/s (µs/conn)"}[row]


def fail(msg):
    sys.exit(f"{PROG}: {msg}")


def make_cert(s):
    """A self-signed ECDSA P-256 certificate: (cert, key, cert+key for HAProxy)."""
    key, cert = s.path("key.pem"), s.path("cert.pem")
    out = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                         capture_output=True, text=True)
    if out.returncode:
        fail(f"openssl req: {out.stderr}")
    with open(cert) as c, open(key) as k:
        both = s.write("cert+key.pem", c.read() + k.read())
    return cert, key, both


def start_veer(s, cert):
    P, t = s.port, s.tmp
    tls = f'\ntls = {{ cert = "{cert[0]}", key = "{cert[1]}" }}' if cert else ""
    conf = s.write("veer.toml", f"""[listener]\naddress = "127.0.0.1:{P['veer']}"\nthreads = 1
http2 = false{tls}\n
[admin]\nsocket = "{t}/veer.sock"\nhttp = "127.0.0.1:{P['admin']}"\n
[pools.blue]\nendpoints = ["127.0.0.1:{P['blue']}"]
[pools.green]\nendpoints = ["127.0.0.1:{P['green']}"]\n
[split]\ncanary_weight = 10\n[slo]\nmin_requests = 20\nmax_p95 = "2s"\nmax_p99 = "5s"\ndry_run = true\n
[state]\npath = "{t}/state.json"\n[log]\nlevel = "warn"\n""")
    return s.spawn("veer", [OPTS.veer, "--config", conf], P["veer"]).pid


def start_nginx_proxy(s, cert):
    P = s.port
    up = (f"  upstream app {{ server 127.0.0.1:{P['blue']} weight=9; server 127.0.0.1:{P['green']} weight=1;"
          " keepalive 256; keepalive_requests 1000000; }\n")
    tls = (f" ssl; ssl_certificate {cert[0]}; ssl_certificate_key {cert[1]}; ssl_protocols TLSv1.2 TLSv1.3;"
           f" ssl_ciphers {TLS12_CIPHERS}; ssl_prefer_server_ciphers on; ssl_session_tickets on;") if cert else ";"
    loc = 'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";'
    http = up + f"  server {{ listen 127.0.0.1:{P['nginx']}{tls} location / {{ {loc} }} }}\n"
    return workers(start_nginx(s, "nginx", 1, http.encode(), P["nginx"]).pid)[0]


def start_haproxy(s, cert):
    P = s.port
    tls = (f" ssl crt {cert[2]} alpn http/1.1 ssl-min-ver TLSv1.2 ciphers {TLS12_CIPHERS}" if cert else "")
    conf = s.write("haproxy.cfg", f"""global\n    nbthread 1\n    maxconn 4096\n    tune.ssl.cachesize 20000
defaults\n    mode http\n    option http-keep-alive\n    http-reuse always
    timeout connect 2s\n    timeout client 60s\n    timeout server 30s\n    timeout http-keep-alive 60s
frontend fe\n    bind 127.0.0.1:{P['haproxy']}{tls}\n    default_backend app
backend app\n    balance roundrobin\n    server blue 127.0.0.1:{P['blue']} weight 90
    server green 127.0.0.1:{P['green']} weight 10
""")
    return s.spawn("haproxy", [tool("haproxy"), "-f", conf], P["haproxy"]).pid


def s_client(port, args, request=S_TIME_REQUEST):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                           "-alpn", "h2,http/1.1", "-ign_eof"] + args,
                          input=request, capture_output=True, timeout=20).stdout.decode(errors="replace")


def check_tls(s, name, port):
    """One s_client connection saving its session, a second resuming it: a line of what they saw."""
    sess = s.path(f"{name}.sess")
    first = s_client(port, ["-sess_out", sess])
    second = s_client(port, ["-sess_in", sess])

    def field(pattern, text):
        m = re.search(pattern, text, re.M)
        return m.group(1).strip() if m else "?"
    status = field(r"^(HTTP/1\.\d \d+)", first)
    if not status.endswith(" 200"):
        fail(f"{name}: no 200 to s_time's request over TLS:\n{first[-1500:]}")
    reused = "Reused, " in second
    version, cipher = field(r"^New, (TLSv[\d.]+)", first), field(r"Cipher is (\S+)", first)
    group, alpn = field(r"^(?:Server|Peer) Temp Key: ([^,\n]+)", first), field(r"^ALPN protocol: (\S+)", first)
    tickets = first.count("Post-Handshake New Session Ticket arrived")
    return (f"{version} {cipher} {group}, ALPN {alpn}, {status}, {tickets} tickets,"
            f" session resumed: {'yes' if reused else 'NO'}")


def run_wrk(row, name, port):
    """(requests/s, requests, errors) of one wrk run."""
    url = f"{'http' if row == 'close' else 'https'}://127.0.0.1:{port}/"
    close = ["-H", "Connection: close"] if row in ("close", "handshake") else []
    out = subprocess.run(["wrk", "-t1", "-c50", "-d", f"{OPTS.duration}s"] + close + [url],
                         capture_output=True, text=True, timeout=OPTS.duration + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rate or not total or not int(total.group(1)):
        fail(f"{row} {name}: wrk failed:\n{out[-800:]}")
    errors = {}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for kind, n in zip(("connect", "read", "write", "timeout"), sock.groups() if sock else ()):
        if int(n):
            errors[kind] = int(n)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors["non-2xx"] = int(non2xx.group(1))
    return float(rate.group(1)), int(total.group(1)), errors


def run_s_time(name, port, mode):
    """(connections/s, connections, counts) of K parallel `s_time MODE` clients (MODE -reuse or
    -new); counts has the connections s_time marked resumed ('r') and full ('*')."""
    version = "-tls1_2" if OPTS.resume_tls == "1.2" else "-tls1_3"
    args = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", mode, "-www", "/",
            "-time", str(OPTS.duration), version]
    results = [None] * OPTS.resume_clients

    def one(i):  # each client's own wall time: s_time prints whole seconds only
        start = time.monotonic()
        out = subprocess.run(args, capture_output=True, text=True, timeout=OPTS.duration + 60).stdout
        results[i] = (out, time.monotonic() - start)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(OPTS.resume_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = conns = 0
    counts = {"resumed": 0, "full": 0}
    for out, wall in results:
        m = re.search(r"^(\d+) connections in \d+ real seconds, (\d+) bytes read per connection", out, re.M)
        if not m:
            fail(f"resume {name}: s_time {mode} failed:\n{out[-800:]}")
        progress = out.partition("starting\n")[2].partition("\n")[0]  # a character per connection
        n = int(m.group(1))
        rate, conns = rate + n / wall, conns + n
        counts["resumed"] += progress.count("r")
        counts["full"] += progress.count("*")
        if not int(m.group(2)):
            counts["empty answers"] = counts.get("empty answers", 0) + 1
    return rate, conns, counts


def measure(row, pids, backend, s):
    """Interleaved runs: {kind: {proxy: [(rate, proxy µs/request, backends µs/request)]}} and
    {kind: {proxy: counts}}; kind is the row, and "new" for the resume row's s_time -new runs."""
    kinds = (row, "new") if row == "resume" and OPTS.resume_control else (row,)
    runs = {k: {n: [] for n in PROXIES} for k in kinds}
    counts = {k: {n: {} for n in PROXIES} for k in kinds}
    for _ in range(OPTS.reps):
        for kind in kinds:
            for name in PROXIES:
                before, b_before = cpu_ns(pids[name]), sum(cpu_ns(b) for b in backend)
                if row == "resume":
                    rate, n, c = run_s_time(name, s.port[name], "-new" if kind == "new" else "-reuse")
                else:
                    rate, n, c = run_wrk(row, name, s.port[name])
                used, b_used = cpu_ns(pids[name]) - before, sum(cpu_ns(b) for b in backend) - b_before
                runs[kind][name].append((rate, used / 1000 / n, b_used / 1000 / n))
                for k, v in c.items():
                    counts[kind][name][k] = counts[kind][name].get(k, 0) + v
    return runs, counts


COLS = ("nginx", "haproxy", "veer")


def medians(runs):
    med = {n: [statistics.median(r[i] for r in runs[n]) for i in range(3)] for n in PROXIES}
    ratio = med["veer"][0] / max(med["nginx"][0], med["haproxy"][0])
    cpu_ratio = med["veer"][1] / min(med["nginx"][1], med["haproxy"][1])
    return med, ratio, cpu_ratio


def report(row, runs, counts, notes):
    med, ratio, cpu_ratio = medians(runs[row])
    print(f"| {title(row)} | nginx | HAProxy | veer | veer ÷ better |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {unit(row)} | " + " | ".join(f"{med[n][0]:,.0f} ({med[n][1]:.1f})" for n in COLS)
          + f" | {ratio:.2f} ({cpu_ratio:.2f}) |")
    print("| backends' on-CPU µs/request | " + " | ".join(f"{med[n][2]:.1f}" for n in COLS) + " | |")
    if "new" in runs:
        new, new_ratio, new_cpu = medians(runs["new"])
        print("| control: full handshakes/s, s_time -new (µs/conn) | "
              + " | ".join(f"{new[n][0]:,.0f} ({new[n][1]:.1f})" for n in COLS)
              + f" | {new_ratio:.2f} ({new_cpu:.2f}) |")
    tallies = ("resumed", "full")
    odd = "; ".join(f"{NAMES[n]}: " + ", ".join(f"{k} {v:,}" for k, v in counts[row][n].items() if k not in tallies)
                    for n in COLS if set(counts[row][n]) - set(tallies))
    if odd:
        print(f"\nerrors over the {OPTS.reps} runs: {odd}")
    if row == "resume":
        notes.append("")
        for n in COLS:
            c = counts[row][n]
            share = c["resumed"] / max(1, c["resumed"] + c["full"])
            notes.append(f"- s_time -reuse → {NAMES[n]}: {share:.1%} of the timed connections resumed"
                         f" ({c['resumed']:,} 'r', {c['full']:,} '*')")
    for line in notes:
        print(line)
    return ratio, cpu_ratio


def run_row(row):
    s = Stack()
    try:
        cert = make_cert(s) if row != "close" else None
        backend = start_h1_backends(s)
        pids = {"veer": start_veer(s, cert), "nginx": start_nginx_proxy(s, cert),
                "haproxy": start_haproxy(s, cert)}
        notes = []
        if cert:
            notes.append("")
            for name in COLS:
                notes.append(f"- s_client → {NAMES[name]}: {check_tls(s, name, s.port[name])}")
        runs, counts = measure(row, pids, backend, s)
        return report(row, runs, counts, notes)
    finally:
        s.stop()


def hold_idle(s, name, pid, port, count, tls, samples):
    """VmRSS of pid before and at each of samples (s after the last of count idle connections
    was answered), with the connections held and answered by green."""
    lib = os.path.join(ROOT, "bench/e2e_lib/idle_conns.py")
    ready = s.path(f"idle-{name}-{'tls' if tls else 'plain'}.ready")
    before = rss_kib(pid)
    with open(ready + ".log", "w") as log:
        p = subprocess.Popen([sys.executable, lib, str(port), str(count), ready, "--hold", "300"]
                             + (["--tls"] if tls else []), stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(3000):
            if os.path.exists(ready) or p.poll() is not None:
                break
            time.sleep(0.02)
        if not os.path.exists(ready):
            fail(f"memory {name}: idle_conns did not get ready (see {ready}.log)")
        start, rss = time.monotonic(), []
        for at in samples:
            time.sleep(max(0.0, start + at - time.monotonic()))
            rss.append(rss_kib(pid))
        _, held, green = (int(x) for x in open(ready).read().split())
        return before, rss, held, green
    finally:
        p.terminate()
        p.wait(timeout=10)


def memory(tls, count, names, samples, target, judged_from):
    """VmRSS growth per idle connection of each proxy's serving process."""
    s = Stack()
    rows = {}
    try:
        cert = make_cert(s) if tls else None
        start_h1_backends(s)
        starts = {"veer": start_veer, "nginx": start_nginx_proxy, "haproxy": start_haproxy}
        pids = {name: starts[name](s, cert) for name in names}
        for name in names:
            rows[name] = hold_idle(s, name, pids[name], s.port[name], count, tls, samples)
    finally:
        s.stop()
    kind = "TLS" if tls else "plaintext"
    print(f"| {count} idle {kind} connections (one GET / each) | " + " | ".join(NAMES[c] for c in names) + " |")
    print("|---|" + "---:|" * len(names))
    print("| VmRSS before, KiB | " + " | ".join(f"{rows[c][0]:,}" for c in names) + " |")
    for i, at in enumerate(samples):
        print(f"| growth per connection {at:g} s after the last answer, bytes | "
              + " | ".join(f"{(rows[c][1][i] - rows[c][0]) * 1024 / max(1, rows[c][2]):,.0f}" for c in names) + " |")
    print("| connections held (green answers) | " + " | ".join(f"{rows[c][2]} ({rows[c][3]})" for c in names) + " |")
    v = rows["veer"]
    per = [(x - v[0]) * 1024 / max(1, v[2]) for x in v[1]]
    judged = [b for at, b in zip(samples, per) if at >= judged_from]
    worst = max(judged)
    since = "from the last answer on" if judged_from == 0 else f"{judged_from:g} s after the last answer and later"
    print(f"\nveer: at most {worst:,.0f} bytes per idle {kind} connection, {since} "
          f"(issue 16's target: ≤ {target:,} bytes: {'met' if worst <= target else 'not met'})")


def main():
    global OPTS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", choices=ROWS + ("all", "none"), default="all")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run (whole seconds: s_time's unit)")
    ap.add_argument("--resume-clients", type=int, default=8, help="parallel s_time processes (default 8)")
    ap.add_argument("--resume-tls", choices=("1.3", "1.2"), default="1.3")
    ap.add_argument("--resume-control", action="store_true",
                    help="resume row: also s_time -new runs (full handshakes, the same client)")
    ap.add_argument("--memory", action="store_true", help="also RSS per idle TLS connection")
    ap.add_argument("--idle-conns", type=int, default=1000)
    ap.add_argument("--memory-plain", action="store_true",
                    help="also veer's RSS per idle plaintext connection, from the last answer on")
    ap.add_argument("--idle-plain", type=int, default=10000)
    ap.add_argument("--veer", default=os.path.join(ROOT, "build/veer"))
    ap.add_argument("--upstream", default=os.path.join(ROOT, "build/veer-upstream"))
    ap.add_argument("--keep", action="store_true", help="keep each row's directory (configs, logs)")
    OPTS = ap.parse_args()
    h2e.OPTS, h2e.PROG = OPTS, PROG  # Stack, start_h1_backends and wait_port read them
    for t in ("wrk", "openssl", "nginx", "haproxy"):
        if not os.path.exists(tool(t)):
            fail(f"{t} is missing (scripts/deps bench)")
    rows = ROWS if OPTS.row == "all" else () if OPTS.row == "none" else (OPTS.row,)
    summary = []
    for i, row in enumerate(rows):
        if i:
            print()
        ratio, cpu_ratio = run_row(row)
        summary.append(f"{row} {ratio:.2f} (CPU {cpu_ratio:.2f})")
    if summary:
        print(f"\nveer ÷ better peer, rate (CPU per request or connection ÷ the lower): {', '.join(summary)}")
    if OPTS.memory:
        print()
        # Idle TLS connections are judged once parked; the first sample shows them just after
        # their answers, many not parked yet.
        memory(True, OPTS.idle_conns, COLS, (0, IDLE_SETTLE, IDLE_LATER), 20 * 1024, IDLE_SETTLE)
    if OPTS.memory_plain:
        print()
        memory(False, OPTS.idle_plain, ("veer",), (0, 2, IDLE_SETTLE), 1024, 0)


OPTS = None

if __name__ == "__main__":
    main()
