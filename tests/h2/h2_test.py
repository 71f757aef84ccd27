#!/usr/bin/python3
"""HTTP/2 from clients (SPEC 10) over loopback, against real peers and raw frames.

Each case starts, in its own temporary directory and on free 127.0.0.1 ports, two
veer-upstream processes (blue, green; HTTP/1.1) and veer in front of them (h2c with prior
knowledge on the plaintext listener; a second case-local veer with a self-signed ECDSA
certificate for ALPN). Clients are Debian's curl, nghttp and h2load, python3-h2 (one
connection, many streams) and raw frames for what no client library sends. It checks:

  curl_h2c_and_alpn          curl --http2-prior-knowledge GET and a 100 KB POST, curl --http2
                             over TLS (ALPN h2) and --http1.1 on both listeners, nghttp; with
                             listener.http2 = false the preface is refused and ALPN is h1 only
  split_per_stream           one connection, 200 streams at weight 50: both pools serve; a
                             sticky header keeps every stream of a user on one pool
  h2load_multiplexed         h2load -n 4000 -c 4 -m 50: every stream 2xx, each one counted in
                             veer_requests_total
  bodies_and_flow_control    a 5 MB upload and a 10 MB download arrive whole; a client that
                             never reads (its windows at 64 KiB, 16 streams of 5 MB): veer's
                             RSS grows by less than 32 MiB, another client is served meanwhile,
                             and the stalled connection is closed after timeouts.idle
  stream_limits              limits.max_concurrent_streams = 5: a sixth open stream is refused
                             (RST_STREAM); a header list over limits.max_header_bytes resets
                             its stream and the connection goes on serving
  floods                     rapid reset (CVE-2023-44487), a CONTINUATION flood
                             (CVE-2024-28182), a window update past 2^31-1 and a garbage
                             preface: each ends its connection with GOAWAY (or a close); another
                             client is served throughout
  request_trailers_to_http1  a request with a body and trailers to an HTTP/1.1 upstream: the body
                             goes chunked and the trailers in its last chunk; the upstream's 103
                             Early Hints reaches the client before its 200, and the trailers of
                             its chunked answer reach the client as HTTP/2 trailers
  resend_on_reused_connection  a raw HTTP/1.1 upstream answers one GET, then closes its kept
                             connection on the next without answering: the GET goes again on a
                             fresh connection and the client gets its 200
  drain_goaway               SIGTERM with a stream waiting on a 1 s upstream: GOAWAY at once, the
                             stream still gets its 200, veer exits 0
  judged_per_stream          green answering 500 at weight 50 over h2 only: the judge rolls it
                             back, the metrics count green's 5xx

Usage:
  tests/h2/h2_test.py --veer build/veer --upstream build/veer-upstream [--only CASE ...] [--keep]

Runs with /usr/bin/python3 (python3-h2 is Debian's). Without curl, nghttp2-client or
python3-h2 every case fails, unless VEER_ALLOW_SKIP=1. Every wait is bounded and polls.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (TESTS, os.path.join(TESTS, "faults")):
    if p not in sys.path:
        sys.path.insert(0, p)
from loopback import free_ports, log, not_run, run_cases, suite_options, wait_until  # noqa: E402
from fault_test import Case, check, metric  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    import hpack
except ImportError:  # reported by main()
    h2 = None

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_block(path, extra=()):
    return hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"), (":path", path),
                                   (":authority", "veer.test")] + list(extra))


def run(args, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client:
    """One HTTP/2 connection driven by python3-h2: requests, their answers by stream."""

    def __init__(self, port, window=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        if window is not None:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.conn.initiate_connection()
        self.flush()
        self.answers = {}  # stream -> {"status", "headers", "body", "ended", "reset"}
        self.goaway = None
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, path, headers=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", path),
                                     (":authority", "veer.test")] + list(headers), end_stream=end)
        self.answers[sid] = {"status": None, "headers": {}, "body": b"", "ended": False, "reset": None}
        self.flush()
        return sid

    def pump(self, until, timeout=10, ack=True):
        deadline = time.monotonic() + timeout
        while not until():
            if self.closed or time.monotonic() > deadline:
                return False
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return until()
            for e in self.conn.receive_data(data):
                self.on_event(e, ack)
            self.flush()
        return True

    def on_event(self, e, ack):
        a = self.answers.get(getattr(e, "stream_id", None))
        if isinstance(e, h2.events.InformationalResponseReceived) and a:
            a.setdefault("interim", []).append(dict((k.decode(), v.decode()) for k, v in e.headers))
        elif isinstance(e, h2.events.ResponseReceived) and a:
            hs = {k.decode(): v.decode() for k, v in e.headers}
            a["status"], a["headers"] = int(hs[":status"]), hs
        elif isinstance(e, h2.events.DataReceived):
            if a:
                a["body"] += e.data
            if ack:
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        elif isinstance(e, h2.events.TrailersReceived) and a:
            a["trailers"] = {k.decode(): v.decode() for k, v in e.headers}
        elif isinstance(e, h2.events.StreamEnded) and a:
            a["ended"] = True
        elif isinstance(e, h2.events.StreamReset) and a:
            a["reset"] = e.error_code
        elif isinstance(e, h2.events.ConnectionTerminated):
            self.goaway = e.error_code

    def fetch(self, path, headers=()):
        sid = self.get(path, headers)
        check(self.pump(lambda: self.answers[sid]["ended"] or self.answers[sid]["reset"] is not None),
              f"no answer to {path} on stream {sid}")
        return self.answers[sid]

    def close(self):
        self.sock.close()


class RawClient:
    """Frames as bytes, for what a well-behaved library refuses to send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def goaway(self, timeout=10):
        """The GOAWAY error code veer sent, "closed" for a close without one, None if neither."""
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                return "closed"
            if not data:
                return "closed"
            buf += data
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                kind, payload = buf[3], buf[9:9 + length]
                buf = buf[9 + length:]
                if kind == GOAWAY:
                    return int.from_bytes(payload[4:8], "big")
        return None

    def close(self):
        self.sock.close()


def setup(c, overrides=None, green_args=()):
    bp, gp = free_ports(2)
    c.upstream("blue", bp)
    c.upstream("green", gp, *green_args)
    base = {"timeouts": {"idle": "3s"}}
    for table, body in (overrides or {}).items():
        base.setdefault(table, {}).update(body)
    return c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], base)


def served_ok(v):
    """Another client, on its own connection, is answered."""
    cl = Client(v.port)
    try:
        a = cl.fetch("/other")
        return a["status"] == 200
    finally:
        cl.close()


def make_cert(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    out = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"])
    check(out.returncode == 0, f"openssl: {out.stderr}")
    return cert, key


def curl(*args):
    out = run(["curl", "-s", "-S", "-o", "-", "-w", "\n%{http_code} %{http_version}", *args])
    body, _, tail = out.stdout.rpartition("\n")
    return body.rstrip("\n"), tail


# --------------------------------------------------------------------------- cases

def case_curl_h2c_and_alpn(c):
    v = setup(c)
    url = f"http://127.0.0.1:{v.port}"
    body, tail = curl("--http2-prior-knowledge", f"{url}/a")
    check(tail == "200 2" and body.endswith("GET /a 0"), f"h2c GET: {tail} {body!r}")
    payload = os.path.join(c.tmp, "payload")
    with open(payload, "wb") as f:
        f.write(os.urandom(100_000))
    body, tail = curl("--http2-prior-knowledge", "--data-binary", f"@{payload}", f"{url}/p")
    check(tail == "200 2" and body.endswith("POST /p 100000"), f"h2c POST: {tail} {body!r}")
    body, tail = curl(f"{url}/h1")
    check(tail == "200 1.1", f"HTTP/1.1 on the same listener: {tail}")
    out = run(["nghttp", "-v", f"{url}/n"])
    check(out.returncode == 0 and ":status: 200" in out.stdout, f"nghttp: {out.stdout[-300:]}")
    # The preface in two pieces, the first shorter than "PRI ": still HTTP/2.
    s = socket.create_connection(("127.0.0.1", v.port), timeout=5)
    s.sendall(PREFACE[:2])
    time.sleep(0.1)  # a second segment (there is nothing to poll for)
    s.sendall(PREFACE[2:] + frame(SETTINGS, 0, 0) +
              frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("/split")))
    got = b""
    while b"GET /split" not in got:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    check(b"GET /split" in got, f"a preface cut after 2 bytes: {got[:200]!r}")

    cert, key = make_cert(c.tmp)
    tport, tadmin = free_ports(2)
    tls = c.veer(v.cfg["pools.blue"]["endpoints"], v.cfg["pools.green"]["endpoints"], {
        "listener": {"address": f"127.0.0.1:{tport}", "tls": {"cert": cert, "key": key}},
        "admin": {"socket": os.path.join(c.tmp, "tls.sock"), "http": f"127.0.0.1:{tadmin}"},
        "state": {"path": os.path.join(c.tmp, "tls-state.json")}})
    body, tail = curl("-k", "--http2", f"https://127.0.0.1:{tls.port}/t")
    check(tail == "200 2", f"ALPN h2: {tail}")
    body, tail = curl("-k", "--http1.1", f"https://127.0.0.1:{tls.port}/t")
    check(tail == "200 1.1", f"ALPN http/1.1: {tail}")

    off = c.veer(v.cfg["pools.blue"]["endpoints"], v.cfg["pools.green"]["endpoints"], {
        "listener": {"address": f"127.0.0.1:{free_ports(1)[0]}", "http2": False},
        "admin": {"socket": os.path.join(c.tmp, "off.sock"), "http": f"127.0.0.1:{free_ports(1)[0]}"},
        "state": {"path": os.path.join(c.tmp, "off-state.json")}})
    body, tail = curl("--http2-prior-knowledge", f"http://127.0.0.1:{off.port}/x")
    check(not tail.endswith(" 2"), f"listener.http2 = false refuses h2c: {tail}")
    return "h2c, ALPN h2 and http/1.1 side by side; http2 = false refuses h2c"


def case_split_per_stream(c):
    v = setup(c, {"split": {"canary_weight": 50, "sticky": {"header": "x-user"}}})
    cl = Client(v.port)
    seen = {}
    for i in range(200):
        a = cl.fetch(f"/s{i}")
        check(a["status"] == 200, f"stream {i}: {a}")
        name = a["body"].split(b" ", 1)[0].decode()
        seen[name] = seen.get(name, 0) + 1
    check(seen.get("blue", 0) > 40 and seen.get("green", 0) > 40, f"one connection, both pools: {seen}")
    sticky = {cl.fetch("/u", [("x-user", "alice")])["body"].split(b" ", 1)[0] for _ in range(30)}
    check(len(sticky) == 1, f"a sticky user stays on one pool: {sticky}")
    cl.close()
    return f"200 streams on one connection: {seen}"


def case_h2load_multiplexed(c):
    v = setup(c, {"split": {"canary_weight": 50}})
    before = metric(v.metrics(), "veer_requests_total")
    out = run(["h2load", "-n", "4000", "-c", "4", "-m", "50", f"http://127.0.0.1:{v.port}/load"], timeout=120)
    check("4000 succeeded" in out.stdout and "4000 2xx" in out.stdout, f"h2load: {out.stdout[-600:]}")
    after = metric(v.metrics(), "veer_requests_total")
    check(after - before >= 4000, f"each stream counted: {before} -> {after}")
    rate = [line for line in out.stdout.splitlines() if line.startswith("finished in")]
    return rate[0] if rate else "4000 streams"


def case_bodies_and_flow_control(c):
    v = setup(c, {"timeouts": {"idle": "2s"}})
    url = f"http://127.0.0.1:{v.port}"
    payload = os.path.join(c.tmp, "big")
    with open(payload, "wb") as f:
        f.write(os.urandom(5_000_000))
    body, tail = curl("--http2-prior-knowledge", "--data-binary", f"@{payload}", f"{url}/up")
    check(tail == "200 2" and body.endswith("POST /up 5000000"), f"5 MB upload: {tail} {body[-60:]!r}")
    out = run(["curl", "-s", "--http2-prior-knowledge", "-o", os.path.join(c.tmp, "down"), "-w",
               "%{http_code} %{size_download}", f"{url}/bytes/10000000"])
    check(out.stdout == "200 10000000", f"10 MB download: {out.stdout}")

    rss0 = rss_kib(v.proc.pid)
    stalled = Client(v.port)
    for i in range(16):
        stalled.get("/bytes/5000000")
    stalled.pump(lambda: False, timeout=1, ack=False)  # reads what comes, never opens a window
    grown = rss_kib(v.proc.pid) - rss0
    check(grown < 32 * 1024, f"a client that never reads costs {grown} KiB")
    t0 = time.monotonic()
    check(served_ok(v), "another client is served meanwhile")
    other_ms = (time.monotonic() - t0) * 1000
    # Blocked on flow control it sends nothing; veer closes it after timeouts.idle.
    stalled.pump(lambda: stalled.closed, timeout=10, ack=False)
    check(stalled.closed, "the stalled connection is closed after timeouts.idle")
    stalled.close()
    return f"stalled client: +{grown} KiB RSS, another served in {other_ms:.0f} ms, closed after idle"


def case_stream_limits(c):
    v = setup(c, {"limits": {"max_concurrent_streams": 5, "max_header_bytes": "4KiB"}})
    cl = Client(v.port)
    cl.pump(lambda: cl.conn.remote_settings.max_concurrent_streams == 5, timeout=5)
    check(cl.conn.remote_settings.max_concurrent_streams == 5, "SETTINGS_MAX_CONCURRENT_STREAMS 5")
    raw = RawClient(v.port)
    # Six streams whose requests never end: the sixth is past the limit.
    raw.send(b"".join(frame(HEADERS, END_HEADERS, 2 * i + 1, request_block(f"/open{i}")) for i in range(6)))
    buf, deadline, refused = b"", time.monotonic() + 5, None
    while refused is None and time.monotonic() < deadline:
        raw.sock.settimeout(0.5)
        try:
            buf += raw.sock.recv(65536)
        except socket.timeout:
            continue
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, sid, payload = buf[3], int.from_bytes(buf[5:9], "big"), buf[9:9 + length]
            buf = buf[9 + length:]
            if kind in (RST_STREAM, GOAWAY):
                refused = (kind, sid, int.from_bytes(payload[-4:], "big"))
    check(refused is not None and (refused[0] == GOAWAY or refused[1] == 11),
          f"the sixth stream is refused: {refused}")
    raw.close()
    a = cl.fetch("/big-header", [("x-big", "v" * 8000)])
    check(a["reset"] is not None or (a["status"] or 0) >= 400, f"a header list over 4 KiB: {a}")
    a = cl.fetch("/after")
    check(a["status"] == 200, f"the connection goes on: {a}")
    cl.close()
    return f"sixth stream refused ({refused}); big header list reset"


def case_floods(c):
    v = setup(c)
    results = {}
    raw = RawClient(v.port)
    burst = b"".join(frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, request_block("/r")) +
                     frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8)) for i in range(2000))
    raw.send(burst)
    results["rapid_reset"] = raw.goaway()
    raw.close()
    check(results["rapid_reset"] is not None, "rapid reset ends the connection")
    check(served_ok(v), "served after the rapid reset")

    raw = RawClient(v.port)
    block = request_block("/c")
    raw.send(frame(HEADERS, 0, 1, block[:4]))
    for _ in range(200):
        if not raw.send(frame(CONTINUATION, 0, 1, b"\x40\x01a\x01b")):
            break
    results["continuation"] = raw.goaway()
    raw.close()
    check(results["continuation"] is not None, "a CONTINUATION flood ends the connection")
    check(served_ok(v), "served after the CONTINUATION flood")

    raw = RawClient(v.port)
    raw.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7fffffff)))
    results["window_overflow"] = raw.goaway()
    raw.close()
    check(results["window_overflow"] in (3, "closed"), f"window past 2^31-1: {results['window_overflow']}")

    s = socket.create_connection(("127.0.0.1", v.port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0))
    s.settimeout(5)
    try:
        got = s.recv(65536)
        while got and s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
    check(served_ok(v), "served after a garbage preface")
    check(v.proc.poll() is None, "veer is still running")
    return f"GOAWAY codes: {results}"


def case_request_trailers_to_http1(c):
    up_port, green = free_ports(2)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", up_port))
    srv.listen(8)
    got = {}

    def serve():  # one HTTP/1.1 exchange: the raw request, then a short answer
        conn, _ = srv.accept()
        conn.settimeout(10)
        data = b""
        while not (b"\r\n0\r\n" in data and data.endswith(b"\r\n\r\n")):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        got["raw"] = data
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\n\r\n"
                     b"2\r\nok\r\n0\r\nx-digest: d1\r\nConnection: close\r\n\r\n")
        conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    v = c.veer([f"127.0.0.1:{up_port}"], [f"127.0.0.1:{green}"], {"health": {"enabled": False}})
    cl = Client(v.port)
    sid = cl.get("/with-trailers", [("content-type", "text/plain")], end=False)
    cl.conn.send_data(sid, b"hello")
    cl.conn.send_headers(sid, [("x-checksum", "abc123")], end_stream=True)
    cl.flush()
    check(cl.pump(lambda: cl.answers[sid]["ended"]), "the answer comes")
    a = cl.answers[sid]
    cl.close()
    interim = a.get("interim", [])
    check(interim and interim[0].get(":status") == "103" and "rel=preload" in interim[0].get("link", ""),
          f"the 103 Early Hints comes first: {interim}")
    check(a["status"] == 200 and a["body"] == b"ok", f"then the answer: {a}")
    check(a.get("trailers") == {"x-digest": "d1"},
          f"the upstream's chunked trailers reach the client, without hop-by-hop fields: {a}")
    t.join(timeout=10)
    srv.close()
    raw = got.get("raw", b"")
    check(b"transfer-encoding: chunked" in raw.lower(), f"a body of unknown length goes chunked: {raw[:300]!r}")
    check(raw.endswith(b"5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n"),
          f"the client's trailers in the last chunk: {raw[-80:]!r}")
    return "request trailers in the last chunk; 103 Early Hints and response trailers forwarded"


def case_resend_on_reused_connection(c):
    up_port, green = free_ports(2)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", up_port))
    srv.listen(8)
    seen = []  # (connection number, request line) as the upstream read them

    def read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        return data.split(b"\r\n", 1)[0].decode()

    def serve():
        # Connection 1 answers its first request and then, as if it had timed out, closes
        # on the next one without a word. Every later connection answers everything.
        for number in range(1, 5):
            conn, _ = srv.accept()
            conn.settimeout(10)
            answered = 0
            while True:
                line = read_request(conn)
                if line is None:
                    break
                seen.append((number, line))
                if number == 1 and answered == 1:
                    break
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                answered += 1
            conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    v = c.veer([f"127.0.0.1:{up_port}"], [f"127.0.0.1:{green}"], {"health": {"enabled": False}})
    cl = Client(v.port)
    first = cl.fetch("/one")
    again = cl.fetch("/two")  # on the pooled connection, which the upstream closes on it
    check(first["status"] == 200 and again["status"] == 200,
          f"a GET on a connection the upstream closed is sent again: {first['status']} {again['status']}")
    check([n for n, line in seen if "/two" in line] == [1, 2], f"once on each connection: {seen}")
    cl.close()
    return "GET resent on a fresh connection after the pooled one closed on it"


def case_drain_goaway(c):
    v = setup(c)
    raw = RawClient(v.port)  # python3-h2 stops reading at a GOAWAY; the stream goes on here
    raw.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("/sleep/1")))
    time.sleep(0.2)  # the stream reaches the upstream (nothing to poll for from outside)
    v.proc.send_signal(signal.SIGTERM)
    seen, buf, status, deadline = [], b"", None, time.monotonic() + 10
    decoder = hpack.Decoder()
    while time.monotonic() < deadline and not (seen and seen[-1] == "end"):
        raw.sock.settimeout(0.5)
        try:
            data = raw.sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        buf += data
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            length = int.from_bytes(buf[:3], "big")
            kind, flags, payload = buf[3], buf[4], buf[9:9 + length]
            buf = buf[9 + length:]
            if kind == GOAWAY:
                seen.append("goaway")
            elif kind == HEADERS:
                status = dict(decoder.decode(payload)).get(":status")
                seen.append("headers")
            if kind in (DATA, HEADERS) and flags & END_STREAM:
                seen.append("end")
    raw.close()
    check(seen[:1] == ["goaway"], f"GOAWAY first, at once: {seen}")
    check(status == "200" and seen[-1:] == ["end"], f"the open stream still gets its 200: {seen} {status}")
    rc = v.proc.wait(timeout=20)
    check(rc == 0, f"veer exits 0 (got {rc})")
    return "GOAWAY, the open stream's 200, exit 0"


def case_judged_per_stream(c):
    v = setup(c, {"split": {"canary_weight": 50}, "health": {"enabled": False},
                  "slo": {"evaluate_every": "200ms", "min_requests": 20, "compare": False}},
              green_args=("--error-rate", "1"))
    stop = threading.Event()

    def traffic():
        cl = Client(v.port)
        end = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < end and not cl.closed:
            try:
                cl.fetch("/t")
            except Exception:
                break
        cl.close()
    t = threading.Thread(target=traffic)
    t.start()
    try:
        st = v.wait_status("rolled back on h2 traffic", lambda s: s["state"] == "rolled_back", 15)
    finally:
        stop.set()
        t.join(timeout=30)
    m = v.metrics()
    fives = metric(m, "veer_requests_total", pool="green", **{"class": "5xx"})
    check(fives > 0, "green's 5xx counted")
    rb = [e for e in v.events() if e["kind"] == "rollback"]
    check(rb and rb[-1]["by"] == "judge", f"by the judge: {rb[-1:]}")
    return f"rolled back by the judge: {rb[-1]['reason']}"


CASES = [
    ("curl_h2c_and_alpn", case_curl_h2c_and_alpn),
    ("split_per_stream", case_split_per_stream),
    ("h2load_multiplexed", case_h2load_multiplexed),
    ("bodies_and_flow_control", case_bodies_and_flow_control),
    ("stream_limits", case_stream_limits),
    ("floods", case_floods),
    ("request_trailers_to_http1", case_request_trailers_to_http1),
    ("resend_on_reused_connection", case_resend_on_reused_connection),
    ("drain_goaway", case_drain_goaway),
    ("judged_per_stream", case_judged_per_stream),
]


def main():
    opts = suite_options(__doc__, CASES, ("--upstream", {"required": True}))
    missing = [n for n in ("curl", "nghttp", "h2load", "openssl") if not shutil.which(n)]
    if h2 is None:
        missing.append("python3-h2")
    if missing:
        return not_run("h2", f"missing: {', '.join(missing)} (scripts/deps test installs them)",
                       skip=f"missing {missing}")
    passed, failed = run_cases(CASES, opts, lambda name: Case(name, opts))
    log(f"h2: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
