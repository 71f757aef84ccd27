#!/usr/bin/python3
"""gRPC through veer (SPEC 10) with Debian's python3-grpcio on both sides, over loopback.

Each case starts two gRPC servers (blue, green; grpcio, plaintext h2c, generic handlers on
raw bytes, so no generated code) on free ports, veer in front with both pools
`protocol = "h2"` (health checks every 200 ms, in HTTP/2), and a grpcio client with veer as
its target. It checks:

  unary_and_streaming      the pools' health checks pass over HTTP/2; unary calls with 1 MiB
                           messages both ways and server-streaming calls
                           (100 messages) answer whole through veer; status codes and their
                           details pass (NOT_FOUND from the server); a call whose deadline is
                           shorter than the server's delay ends DEADLINE_EXCEEDED; 200
                           concurrent calls on one channel all succeed
  unavailable_canary       green answers UNAVAILABLE on 30% of calls (HTTP 200, grpc-status 14
                           in the trailers): at weight 50 the judge rolls it back, the reason
                           names the error rate; prints the time from the first failing call
                           to canary weight 0
  http1_client_to_h2_pool  an HTTP/1.1 client (raw socket, keep-alive) posts gRPC frames to the
                           h2 pool, once with Content-Length and once chunked: the answer comes
                           back chunked with grpc-status in its last chunk's trailers (0), or in
                           the head for a trailers-only answer (NOT_FOUND with its message), the
                           second on the same connection, then 1 MiB each way; the calls are counted by code
  http1_body_stalls_answer_504  an HTTP/1.1 client sends 10 of its 1,000 body bytes and stops:
                           no answer within timeouts.upstream_response (300 ms) is a 504 at
                           once, though the body never ends
  grpc_health_check        health.grpc = true: the checks call grpc.health.v1.Health/Check with an
                           empty request; SERVING passes, NOT_SERVING and UNKNOWN (an empty
                           answer) fail although HTTP says 200 and grpc-status 0; SERVING again
                           brings the endpoint back
  codes_not_in_the_list    green answers NOT_FOUND on every call (not in slo.grpc_errors): no
                           rollback, the calls count as successes, veer_grpc_calls_total
                           counts them by code

Usage:
  tests/h2/grpc_test.py --veer build/veer [--only CASE ...] [--keep]

Runs with /usr/bin/python3 (python3-grpcio is Debian's). Without it every case fails unless
VEER_ALLOW_SKIP=1. Every wait is bounded and polls.
"""

import os
import socket
import struct
import sys
import threading
import time
from concurrent import futures

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (TESTS, os.path.join(TESTS, "faults")):
    if p not in sys.path:
        sys.path.insert(0, p)
from loopback import free_ports, log, not_run, run_cases, suite_options  # noqa: E402
from fault_test import Case, check, metric  # noqa: E402

try:
    import grpc
except ImportError:
    grpc = None

SERVICE = "veer.test.Echo"
HEALTH = "grpc.health.v1.Health"


class Server:
    """A grpcio server answering /veer.test.Echo/{Unary,Stream}; `fail` decides each call's fate."""

    def __init__(self, name, port):
        self.name = name
        self.fail = None  # None, or (grpc.StatusCode, share 0..1)
        self.calls = 0
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                                  options=[("grpc.max_receive_message_length", 8 << 20),
                                           ("grpc.max_send_message_length", 8 << 20)])
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "Stream": grpc.unary_stream_rpc_method_handler(self.stream),
        }
        self.serving = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}
        self.health_checks = 0
        health = {"Check": grpc.unary_unary_rpc_method_handler(self.check)}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),
                                              grpc.method_handlers_generic_handler(HEALTH, health)))
        self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def fate(self, context):
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.fail:
            code, share = self.fail
            if (n % 10) < share * 10:
                context.abort(code, f"{self.name} fails this one")

    def check(self, request, context):  # the standard health service, on raw bytes
        with self.lock:
            self.health_checks += 1
        if request != b"":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected an empty request: {request!r}")
        return self.serving

    def unary(self, request, context):
        self.fate(context)
        if request.startswith(b"sleep:"):
            time.sleep(float(request[6:].decode()))
        if request == b"missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return self.name.encode() + b":" + request

    def stream(self, request, context):
        self.fate(context)
        for i in range(int(request.decode())):
            yield f"{self.name}:{i}".encode()

    def stop(self):
        self.server.stop(0)


class GrpcCase(Case):
    def __init__(self, name, opts):
        super().__init__(name, opts)
        self.servers = []

    def close(self):
        for s in self.servers:
            s.stop()
        super().close()


def setup(c, overrides=None):
    bp, gp = free_ports(2)
    blue, green = Server("blue", bp), Server("green", gp)
    c.servers += [blue, green]
    cfg = {"pools.blue": {"endpoints": [f"127.0.0.1:{bp}"], "protocol": "h2"},
           "pools.green": {"endpoints": [f"127.0.0.1:{gp}"], "protocol": "h2"},
           "health": {"interval": "200ms", "timeout": "200ms", "healthy_after": 1}}
    for table, body in (overrides or {}).items():
        cfg.setdefault(table, {}).update(body)
    v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{gp}"], cfg)
    channel = grpc.insecure_channel(f"127.0.0.1:{v.port}", options=[
        ("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)])
    return v, blue, green, channel


def unary(channel):
    return channel.unary_unary(f"/{SERVICE}/Unary")


def case_unary_and_streaming(c):
    v, blue, green, ch = setup(c)
    call = unary(ch)
    # The h2 pool's health checks speak HTTP/2 (grpcio answers a plain GET with 200).
    v.wait_status("checked healthy over h2", lambda s: all(
        e["healthy"] for p in s["pools"].values() for e in p["endpoints"]), 10)
    check("unhealthy" not in v.log_text(), "no endpoint was ever unhealthy")
    check(call(b"hello", timeout=5) == b"blue:hello", "a unary call")
    big = os.urandom(1 << 20)
    check(call(big, timeout=10) == b"blue:" + big, "1 MiB both ways")
    got = list(ch.unary_stream(f"/{SERVICE}/Stream")(b"100", timeout=10))
    check(len(got) == 100 and got[-1] == b"blue:99", f"server streaming: {len(got)} messages")
    try:
        call(b"missing", timeout=5)
        check(False, "NOT_FOUND expected")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND and e.details() == "no such thing",
              f"status and details pass: {e.code()} {e.details()!r}")
    t0 = time.monotonic()
    try:
        call(b"sleep:2", timeout=0.3)
        check(False, "DEADLINE_EXCEEDED expected")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"deadline: {e.code()}")
    check(time.monotonic() - t0 < 1.5, "the deadline holds")
    results = []
    with futures.ThreadPoolExecutor(max_workers=50) as pool:
        fs = [pool.submit(call, f"c{i}".encode(), timeout=20) for i in range(200)]
        results = [f.result() for f in fs]
    check(all(r.startswith(b"blue:c") for r in results), "200 concurrent calls")
    ok = metric(v.metrics(), "veer_requests_total", pool="blue", **{"class": "2xx"})
    check(ok >= 200, f"each call counted: {ok}")
    ch.close()
    return "unary 1 MiB, 100-message stream, NOT_FOUND, deadline, 200 concurrent"


def case_unavailable_canary(c):
    v, blue, green, ch = setup(c, {
        "split": {"canary_weight": 50},
        "slo": {"evaluate_every": "200ms", "min_requests": 20, "compare": False,
                "max_error_rate": 0.05}})
    green.fail = (grpc.StatusCode.UNAVAILABLE, 0.3)
    call = unary(ch)
    first_failure, stop = [None], threading.Event()

    def traffic():
        end = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < end:
            try:
                call(b"x", timeout=5)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and first_failure[0] is None:
                    first_failure[0] = time.monotonic()
    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        v.wait_status("rolled back", lambda s: s["state"] == "rolled_back", 15)
        rolled = time.monotonic()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    rb = [e for e in v.events() if e["kind"] == "rollback"][-1]
    check(rb["by"] == "judge" and "error_rate" in rb["reason"], f"by the judge on errors: {rb}")
    ch.close()
    took = rolled - first_failure[0] if first_failure[0] else float("nan")
    return f"rolled back {took * 1000:.0f} ms after the first UNAVAILABLE: {rb['reason']}"


def grpc_frame(message):
    return b"\0" + struct.pack(">I", len(message)) + message


def read_chunked_answer(sock):
    """One HTTP/1.1 answer with a chunked body: (head, body, trailers as a dict)."""
    buf = b""
    deadline = time.monotonic() + 10

    def more():
        nonlocal buf
        check(time.monotonic() < deadline, f"the answer comes whole: {buf[:300]!r}")
        data = sock.recv(65536)
        check(data, f"the connection stays open until the answer ends: {buf[:300]!r}")
        buf += data

    while b"\r\n\r\n" not in buf:
        more()
    head, buf = buf.split(b"\r\n\r\n", 1)
    check(b"transfer-encoding: chunked" in head.lower(), f"chunked, its length unknown: {head!r}")
    body = b""
    while True:
        while b"\r\n" not in buf:
            more()
        size_line, buf = buf.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        while len(buf) < size + 2:
            more()
        body, buf = body + buf[:size], buf[size + 2:]
    while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
        more()
    trailers = {}
    for line in buf.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if b":" in line:
            k, v = line.split(b":", 1)
            trailers[k.decode().lower()] = v.decode().strip()
    return head.decode(), body, trailers


def case_http1_client_to_h2_pool(c):
    v, blue, green, ch = setup(c)
    ch.close()
    sock = socket.create_connection(("127.0.0.1", v.port), timeout=10)
    common = (f"Host: veer.test\r\nContent-Type: application/grpc\r\nTE: trailers\r\n")
    msg = grpc_frame(b"hello")
    sock.sendall(f"POST /{SERVICE}/Unary HTTP/1.1\r\n{common}Content-Length: {len(msg)}\r\n\r\n"
                 .encode() + msg)
    head, body, trailers = read_chunked_answer(sock)
    check(head.startswith("HTTP/1.1 200"), f"200 from the h2 pool: {head!r}")
    check(body == grpc_frame(b"blue:hello"), f"the answer's message: {body!r}")
    check(trailers.get("grpc-status") == "0", f"grpc-status in the last chunk: {trailers}")
    missing = grpc_frame(b"missing")
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(missing), missing)
    sock.sendall(f"POST /{SERVICE}/Unary HTTP/1.1\r\n{common}Transfer-Encoding: chunked\r\n\r\n"
                 .encode() + chunked)
    head, body, trailers = read_chunked_answer(sock)
    # grpcio answers an abort trailers-only: its status is in the head, which HTTP/1 keeps.
    check("grpc-status: 5\r\n" in head.lower() and "grpc-message: no such thing" in head.lower(),
          f"a chunked request on the same connection, NOT_FOUND in the head: {head!r} {trailers}")
    big = grpc_frame(os.urandom(1 << 20))  # past every window: the body waits for them
    pieces = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                      for i in range(0, len(big), 65536))
    sock.sendall(f"POST /{SERVICE}/Unary HTTP/1.1\r\n{common}Transfer-Encoding: chunked\r\n\r\n"
                 .encode() + pieces + b"0\r\n\r\n")
    head, body, trailers = read_chunked_answer(sock)
    check(body == grpc_frame(b"blue:" + big[5:]) and trailers.get("grpc-status") == "0",
          f"1 MiB each way: {len(body)} bytes, {trailers}")
    sock.close()
    m = v.metrics()
    ok, nf = (metric(m, "veer_grpc_calls_total", pool="blue", code=k) for k in ("OK", "NOT_FOUND"))
    check(ok >= 1 and nf >= 1, f"counted by code: OK {ok}, NOT_FOUND {nf}")
    return "Content-Length, chunked and 1 MiB gRPC posts over HTTP/1.1, grpc-status in the trailers"


def endpoint_healthy(status, pool):
    return status["pools"][pool]["endpoints"][0]["healthy"]


def case_http1_body_stalls_answer_504(c):
    v, blue, green, ch = setup(c, {"timeouts": {"upstream_response": "300ms"}})
    ch.close()
    sock = socket.create_connection(("127.0.0.1", v.port), timeout=10)
    sock.sendall(f"POST /{SERVICE}/Unary HTTP/1.1\r\nHost: veer.test\r\nContent-Type: application/grpc\r\n"
                 "TE: trailers\r\nContent-Length: 1000\r\n\r\n".encode() + grpc_frame(b"x" * 995)[:10])
    t0 = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    took = time.monotonic() - t0
    sock.close()
    check(data.startswith(b"HTTP/1.1 504"), f"504 when the answer does not come: {data[:100]!r}")
    check(took < 3, f"at upstream_response, not when the stalled body would end ({took:.2f} s)")
    return f"504 after {took:.2f} s with the body still incomplete"


def case_grpc_health_check(c):
    v, blue, green, ch = setup(c, {"health": {"grpc": True, "unhealthy_after": 1}})
    ch.close()
    v.wait_status("both checked", lambda s: blue.health_checks >= 2 and green.health_checks >= 2, 10)
    check(endpoint_healthy(v.status(), "green"), "SERVING passes")
    green.serving = b"\x08\x02"  # NOT_SERVING: still grpc-status 0 and HTTP 200
    v.wait_status("green unhealthy", lambda s: not endpoint_healthy(s, "green"), 10)
    check("NOT_SERVING" in v.log_text(), "the log says why")
    check(endpoint_healthy(v.status(), "blue"), "blue stays healthy")
    green.serving = b""  # proto3's default: UNKNOWN
    seen = green.health_checks
    v.wait_status("two checks on UNKNOWN", lambda s: green.health_checks >= seen + 2, 10)
    check(not endpoint_healthy(v.status(), "green"), "UNKNOWN does not pass")
    green.serving = b"\x08\x01"
    v.wait_status("green healthy again", lambda s: endpoint_healthy(s, "green"), 10)
    return "SERVING passes; NOT_SERVING and UNKNOWN fail (HTTP 200, grpc-status 0 all along)"


def case_codes_not_in_the_list(c):
    v, blue, green, ch = setup(c, {
        "split": {"canary_weight": 50},
        "slo": {"evaluate_every": "200ms", "min_requests": 20, "compare": False}})
    green.fail = (grpc.StatusCode.NOT_FOUND, 1.0)
    call = unary(ch)
    failures = 0
    for _ in range(200):
        try:
            call(b"x", timeout=5)
        except grpc.RpcError as e:
            failures += 1
            check(e.code() == grpc.StatusCode.NOT_FOUND, f"only NOT_FOUND: {e.code()}")
    check(failures > 50, f"green answered NOT_FOUND ({failures})")
    st = v.wait_status("judged", lambda s: s.get("verdict") is not None, 5)
    check(st["state"] != "rolled_back", f"NOT_FOUND is not a failure: {st['state']}")
    ok = metric(v.metrics(), "veer_requests_total", pool="green", **{"class": "2xx"})
    check(ok >= failures, f"counted as successes: {ok}")
    by_code = metric(v.metrics(), "veer_grpc_calls_total", pool="green", code="NOT_FOUND")
    check(by_code == failures, f"veer_grpc_calls_total counts them by code: {by_code}")
    ok_calls = metric(v.metrics(), "veer_grpc_calls_total", pool="blue", code="OK")
    check(ok_calls > 0, f"and blue's OK calls: {ok_calls}")
    ch.close()
    return f"{failures} NOT_FOUND answers, no rollback"


CASES = [
    ("unary_and_streaming", case_unary_and_streaming),
    ("unavailable_canary", case_unavailable_canary),
    ("http1_client_to_h2_pool", case_http1_client_to_h2_pool),
    ("http1_body_stalls_answer_504", case_http1_body_stalls_answer_504),
    ("grpc_health_check", case_grpc_health_check),
    ("codes_not_in_the_list", case_codes_not_in_the_list),
]


def main():
    opts = suite_options(__doc__, CASES)
    opts.upstream = None
    if grpc is None:
        return not_run("grpc", "python3-grpcio is not installed (scripts/deps test installs it)",
                       skip="python3-grpcio is not installed")
    passed, failed = run_cases(CASES, opts, lambda name: GrpcCase(name, opts))
    log(f"grpc: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
