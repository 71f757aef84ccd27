#!/usr/bin/python3
"""RFC 9113 conformance of veer's HTTP/2 server side (SPEC 10), in raw frames.

Our own h2spec-like set (h2spec is not packaged): each group below starts one veer (h2c
with prior knowledge on its plaintext listener) in front of two veer-upstream processes,
then runs its checks, each on a fresh connection to that veer. Frames go out as bytes
(h2_test.frame, HPACK blocks from python3-hpack) and every frame veer sends back is parsed
(type, flags, stream, error code; its header blocks decoded in order). A connection error
must come as GOAWAY with the RFC's code and then a close; a stream error as RST_STREAM
with its code, after which a GET on the same connection must still get its 200. Where
RFC 9113 asks for a stream error outside header validation (DATA over the frame size, DATA
after END_STREAM, WINDOW_UPDATE of 0 on a stream, PRIORITY of 4 bytes, a self-dependency,
DATA past the stream window), a GOAWAY with the same code passes too: 5.4.1 lets an
endpoint treat a stream error as a connection error, and nghttp2 does for most of them.

  preface_and_settings  a wrong preface closes; the preface not followed by SETTINGS; veer's
                        first frame is SETTINGS (MAX_CONCURRENT_STREAMS = limits, ENABLE_PUSH
                        = 0, MAX_HEADER_LIST_SIZE = limits.max_header_bytes); the client's
                        SETTINGS are acknowledged; SETTINGS of a length not a multiple of 6,
                        an ACK with a payload, INITIAL_WINDOW_SIZE > 2^31-1, ENABLE_PUSH = 2,
                        MAX_FRAME_SIZE < 16384, SETTINGS on a stream; an unknown setting is
                        ignored (3.4, 4.2, 6.5)
  ping_and_frame_size   PING answered by an ACK with its payload; PING of 7 bytes and on a
                        stream; DATA and HEADERS over SETTINGS_MAX_FRAME_SIZE; veer's own
                        DATA frames within 16384 (4.2, 6.7)
  stream_states         HEADERS on an even stream, stream ids going down, DATA on an idle
                        stream, DATA after END_STREAM, RST_STREAM on stream 0 / an idle stream
                        / of 3 bytes, WINDOW_UPDATE of 0 on a stream and on the connection,
                        of 3 bytes, CONTINUATION without HEADERS, a header block interrupted,
                        padding longer than the frame; unknown frame types, PRIORITY, padded
                        and CONTINUATION'd requests are served; the client's GOAWAY lets the
                        open stream finish, then veer closes (5.1, 5.1.1, 5.5, 6.x)
  header_validation     an uppercase name, a missing :method / :path / :scheme, an empty
                        :path, an unknown or a response pseudo-header, a pseudo-header after a
                        regular one, a connection-specific field, te other than "trailers", a
                        content-length the DATA contradicts: each resets its stream only; te:
                        trailers is served; HPACK index 0, an index past the tables, an
                        integer overflow, a table size update over the limit: GOAWAY
                        COMPRESSION_ERROR (8.1.1, 8.2, 8.3, RFC 7541)
  flow_control          DATA past the stream window veer advertised (its upstream not
                        connected yet, so nothing was forwarded): FLOW_CONTROL_ERROR; a stream
                        WINDOW_UPDATE past 2^31-1; a 300 KB body sent only as windows are
                        granted arrives whole (veer sends WINDOW_UPDATE as it forwards); with
                        the client's INITIAL_WINDOW_SIZE at 1000 veer sends no more than
                        granted (5.2, 6.9)

Usage:
  tests/h2/conformance_test.py --veer build/veer --upstream build/veer-upstream
                               [--only GROUP ...] [--keep]

Prints one line per check (`ok` / `FAIL`, with what veer sent), then one PASS/FAIL line per
group, and ends with `h2_conformance: N passed, N failed` (groups). Runs with
/usr/bin/python3 (python3-hpack is Debian's). Every wait is bounded and polls a socket;
nothing sleeps to synchronise.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2_test import (CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING,  # noqa: E402
                     PREFACE, RST_STREAM, SETTINGS, WINDOW_UPDATE, frame, h2, request_block, setup)
from loopback import Failure, free_ports, log, not_run, run_cases, suite_options  # noqa: E402
from fault_test import Case, check  # noqa: E402

try:
    import hpack
except ImportError:  # reported by main()
    hpack = None

PRIORITY, PUSH_PROMISE = 2, 5
ACK, PADDED, PRIORITY_FLAG = 0x1, 0x8, 0x20
TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE",
         6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
          4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
          8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
          12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED = 0, 1, 3, 5
FRAME_SIZE_ERROR, COMPRESSION_ERROR = 6, 9
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = 1, 2, 3, 4, 5, 6
WAIT = 5  # seconds: the bound of every wait for a frame


def err(code):
    return ERRORS.get(code, f"0x{code:x}")


def setting(ident, value):
    return struct.pack(">HI", ident, value)


def u32(n):
    return struct.pack(">I", n)


def block(fields):
    """A header block of exactly these fields, in this order (a fresh HPACK encoder)."""
    return hpack.Encoder().encode(fields)


def req_fields(method="GET", path="/ok", extra=()):
    return [(":method", method), (":scheme", "http"), (":path", path),
            (":authority", "veer.test")] + list(extra)


class Frame:
    def __init__(self, kind, flags, sid, payload):
        self.type, self.flags, self.sid, self.payload = kind, flags, sid, payload
        self.headers = None  # decoded fields, on the frame that ends a header block
        self.end = False  # this frame ends the server's side of its stream

    @property
    def code(self):
        """The error code of a RST_STREAM or GOAWAY."""
        if self.type == RST_STREAM and len(self.payload) == 4:
            return int.from_bytes(self.payload, "big")
        if self.type == GOAWAY and len(self.payload) >= 8:
            return int.from_bytes(self.payload[4:8], "big")
        return None

    def data(self):
        """A DATA frame's data, without padding."""
        p = self.payload
        if self.flags & PADDED:
            p = p[1:len(p) - p[0]]
        return p

    def __str__(self):
        name = TYPES.get(self.type, f"type 0x{self.type:x}")
        bits = []
        if self.type == RST_STREAM:
            bits.append(err(self.code) if self.code is not None else f"{len(self.payload)} bytes")
        elif self.type == GOAWAY:
            last = int.from_bytes(self.payload[:4], "big") & 0x7fffffff if len(self.payload) >= 4 else None
            bits.append(f"{err(self.code)}, last {last}")
            if len(self.payload) > 8:
                bits.append(repr(self.payload[8:80].decode("latin-1")))
        elif self.type == SETTINGS:
            bits.append("ACK" if self.flags & ACK else str(parse_settings(self.payload)))
        elif self.type == WINDOW_UPDATE and len(self.payload) == 4:
            bits.append(f"+{int.from_bytes(self.payload, 'big')}")
        elif self.type == DATA:
            bits.append(f"{len(self.payload)} bytes")
        elif self.type == PING:
            bits.append(("ACK " if self.flags & ACK else "") + self.payload.hex())
        if self.headers is not None:
            status = dict(self.headers).get(":status")
            if status:
                bits.append(f":status {status}")
        if self.flags & END_STREAM and self.type in (DATA, HEADERS):
            bits.append("END_STREAM")
        return f"{name}(stream {self.sid}{''.join(', ' + b for b in bits)})"


def parse_settings(payload):
    return {int.from_bytes(payload[i:i + 2], "big"): int.from_bytes(payload[i + 2:i + 6], "big")
            for i in range(0, len(payload) - len(payload) % 6, 6)}


class H2:
    """One raw HTTP/2 connection to veer: what we send is bytes; what veer sends is parsed in
    order (one HPACK decoder for all its header blocks), its SETTINGS acknowledged and the
    DATA it sends given back as WINDOW_UPDATEs (unless auto_window is off)."""

    def __init__(self, port, settings=b"", preface=PREFACE, handshake=True, auto_window=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = b""
        self.eof = False
        self.decoder = hpack.Decoder()
        self.block = None  # a header block waiting for its CONTINUATION
        self.block_ends_stream = False
        self.frames = []  # every frame veer sent
        self.seen = []  # the same, as text
        self.server_settings = None  # veer's first SETTINGS
        self.acks = 0  # SETTINGS ACKs veer sent
        self.auto_window = auto_window
        self.next_sid = 1
        self.window = 65535  # our send window on the connection, as veer grants it
        self.initial = 65535  # veer's SETTINGS_INITIAL_WINDOW_SIZE
        self.granted = {}  # stream -> WINDOW_UPDATE increments veer sent for it
        self.ended = set()  # streams whose answer ended (END_STREAM or RST_STREAM)
        if preface is not None:
            self.send(preface + (frame(SETTINGS, 0, 0, settings) if settings is not None else b""))
        if handshake:
            got = self.wait(lambda f: self.server_settings is not None and self.acks >= 1)
            check(got is not None, f"no SETTINGS and SETTINGS ACK from veer: {self.trace()}")

    def close(self):
        self.sock.close()

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def sid(self):
        """The next client stream id."""
        sid, self.next_sid = self.next_sid, self.next_sid + 2
        return sid

    def trace(self, n=12):
        tail = self.seen[-n:]
        more = f"... {len(self.seen) - n} earlier, " if len(self.seen) > n else ""
        state = "connection closed" if self.eof else "connection open"
        return f"[{more}{'; '.join(tail) or 'no frames'}] ({state})"

    def stream_window(self, sid):
        return self.initial + self.granted.get(sid, 0)

    def _take(self):
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[:3], "big")
        if len(self.buf) < 9 + length:
            return None
        f = Frame(self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff,
                  self.buf[9:9 + length])
        self.buf = self.buf[9 + length:]
        if f.type in (HEADERS, CONTINUATION):
            frag = f.payload
            if f.type == HEADERS:
                pad = 0
                if f.flags & PADDED:
                    pad, frag = frag[0], frag[1:]
                if f.flags & PRIORITY_FLAG:
                    frag = frag[5:]
                frag = frag[:len(frag) - pad]
                self.block, self.block_ends_stream = frag, bool(f.flags & END_STREAM)
            else:
                self.block = (self.block or b"") + frag
            if f.flags & END_HEADERS:
                f.headers = self.decoder.decode(self.block)
                f.end = self.block_ends_stream
                self.block = None
        elif f.type == DATA:
            f.end = bool(f.flags & END_STREAM)
            if self.auto_window and length:
                self.send(frame(WINDOW_UPDATE, 0, 0, u32(length)) +
                          (b"" if f.end else frame(WINDOW_UPDATE, 0, f.sid, u32(length))))
        elif f.type == SETTINGS:
            if f.flags & ACK:
                self.acks += 1
            else:
                values = parse_settings(f.payload)
                if self.server_settings is None:
                    self.server_settings = values
                if INITIAL_WINDOW_SIZE in values:
                    self.initial = values[INITIAL_WINDOW_SIZE]
                self.send(frame(SETTINGS, ACK, 0))
        elif f.type == WINDOW_UPDATE and len(f.payload) == 4:
            inc = int.from_bytes(f.payload, "big") & 0x7fffffff
            if f.sid == 0:
                self.window += inc
            else:
                self.granted[f.sid] = self.granted.get(f.sid, 0) + inc
        elif f.type == RST_STREAM:
            f.end = True
        if f.end:
            self.ended.add(f.sid)
        self.frames.append(f)
        self.seen.append(str(f))
        return f

    def read(self, deadline):
        """The next frame veer sent; None at the deadline or once the connection is closed."""
        while True:
            f = self._take()
            if f is not None:
                return f
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                data = b""
            if data:
                self.buf += data
            else:
                self.eof = True

    def wait(self, pred, timeout=WAIT):
        """The first frame (from now on) for which pred() holds; None at the deadline or close."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read(deadline)
            if f is None or pred(f):
                return f

    def closes(self, timeout=WAIT):
        """Whether veer closes the connection within the timeout (frames before are read)."""
        self.wait(lambda f: False, timeout)
        return self.eof

    # ---- what veer must answer

    def conn_error(self, code):
        """A GOAWAY with `code` comes, and then the connection closes."""
        f = self.wait(lambda f: f.type in (GOAWAY, RST_STREAM) or (f.type == HEADERS and f.headers))
        if f is None:
            raise Failure(f"expected GOAWAY {err(code)}, got none: {self.trace()}")
        check(f.type == GOAWAY, f"expected GOAWAY {err(code)}, got {f}: {self.trace()}")
        check(f.code == code, f"expected GOAWAY {err(code)}, got {f}")
        check(self.closes(), f"the connection stays open after {f}: {self.trace()}")
        return str(f)

    def stream_error(self, sid, code, goaway_ok=False):
        """A RST_STREAM on `sid` with `code` (or, if goaway_ok, a GOAWAY with it); then, after a
        RST_STREAM, a GET on this connection is answered 200. What veer sent, as text."""
        f = self.wait(lambda f: f.type == GOAWAY or (f.sid == sid and f.type in (RST_STREAM, HEADERS, DATA)))
        want = f"RST_STREAM({sid}, {err(code)})" + (f" or GOAWAY {err(code)}" if goaway_ok else "")
        if f is None:
            raise Failure(f"expected {want}, got none: {self.trace()}")
        if f.type == GOAWAY and goaway_ok and f.code == code:
            check(self.closes(), f"the connection stays open after {f}")
            return str(f)
        check(f.type == RST_STREAM, f"expected {want}, got {f}: {self.trace()}")
        check(f.code == code, f"expected {want}, got {f}")
        status, body = self.get("/after")
        check(status == 200, f"after {f}, a GET on the same connection got {status}")
        return f"{f}, then GET 200"

    def request(self, fields, end=True, flags=0):
        sid = self.sid()
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end else 0) | flags, sid, block(fields)))
        return sid

    def get(self, path="/ok", timeout=WAIT):
        sid = self.sid()
        self.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block(path)))
        return self.answer(sid, timeout)

    def answer(self, sid, timeout=WAIT):
        """(status, body) of stream sid's answer; fails on a reset, a GOAWAY, a close."""
        deadline = time.monotonic() + timeout
        status, body = None, b""
        while True:
            f = self.read(deadline)
            if f is None:
                raise Failure(f"no answer on stream {sid}: {self.trace()}")
            if f.type == GOAWAY or (f.type == RST_STREAM and f.sid == sid):
                raise Failure(f"stream {sid}: {f} instead of an answer: {self.trace()}")
            if f.sid != sid:
                continue
            if f.headers:
                s = dict(f.headers).get(":status")
                if s and int(s) >= 200:
                    status = int(s)
            elif f.type == DATA:
                body += f.data()
            if f.end:
                return status, body


# --------------------------------------------------------------------------- checks

class Checks:
    """A group's checks: each runs on its own, a failure is recorded and the next one runs."""

    def __init__(self, v):
        self.v = v
        self.ok, self.failed = [], []

    def __call__(self, name, fn):
        conns = []

        def connect(**kw):
            c = H2(self.v.port, **kw)
            conns.append(c)
            return c
        try:
            detail = fn(connect)
            self.ok.append(name)
            log(f"    ok   {name}: {detail}")
        except Failure as e:
            self.failed.append(name)
            log(f"    FAIL {name}: {e}")
        except Exception as e:  # a broken check is a failed check, and the others still run
            self.failed.append(name)
            log(f"    FAIL {name}: {type(e).__name__}: {e}")
        finally:
            for c in conns:
                c.close()

    def result(self):
        check(self.v.proc.poll() is None, f"veer exited with {self.v.proc.returncode}")
        total = len(self.ok) + len(self.failed)
        check(not self.failed, f"{len(self.failed)} of {total} checks failed: {', '.join(self.failed)}")
        return f"{total} checks"


def conn_error_after(frames, code, settings=b""):
    """A check: after the handshake, `frames`; veer must answer GOAWAY `code` and close."""
    def fn(connect):
        c = connect(settings=settings)
        c.send(frames(c) if callable(frames) else frames)
        return c.conn_error(code)
    return fn


def served(connect, c=None):
    c = c or connect()
    status, _ = c.get("/ok")
    check(status == 200, f"GET answered {status}: {c.trace()}")


# --------------------------------------------------------------------------- groups

def group_preface_and_settings(c):
    v = setup(c, {"limits": {"max_concurrent_streams": 37, "max_header_bytes": "32KiB"}})
    t = Checks(v)

    def wrong_preface(connect):
        # RFC 9113 3.4: an invalid preface is a connection error PROTOCOL_ERROR; veer may
        # just close. Either way nothing is served on it.
        c = connect(preface=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", handshake=False)
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("/x")))
        c.closes()
        check(c.eof, f"a wrong preface leaves the connection open: {c.trace()}")
        bad = [s for s in c.seen if s.startswith(("HEADERS", "DATA"))]
        check(not bad, f"a wrong preface was served: {c.trace()}")
        goaways = [s for s in c.seen if s.startswith("GOAWAY")]
        check(all("PROTOCOL_ERROR" in s for s in goaways), f"GOAWAY code: {goaways}")
        return f"closed after {c.trace()}"
    t("wrong_preface_closes", wrong_preface)

    def first_frame_settings(connect):
        c = connect(handshake=False)
        f = c.wait(lambda f: True)
        check(f is not None and f.type == SETTINGS and not f.flags & ACK and f.sid == 0,
              f"veer's first frame is SETTINGS (3.4): {c.trace()}")
        s = parse_settings(f.payload)
        check(s.get(MAX_CONCURRENT_STREAMS) == 37, f"SETTINGS_MAX_CONCURRENT_STREAMS = 37 (limits): {s}")
        check(s.get(ENABLE_PUSH, 0) == 0, f"SETTINGS_ENABLE_PUSH 0 from a server (8.4): {s}")
        check(s.get(MAX_HEADER_LIST_SIZE) == 32 * 1024, f"SETTINGS_MAX_HEADER_LIST_SIZE = 32 KiB: {s}")
        check(len(f.payload) % 6 == 0, f"SETTINGS length {len(f.payload)}")
        return str(f)
    t("server_first_frame_is_settings", first_frame_settings)

    def settings_acked(connect):
        c = connect(settings=setting(INITIAL_WINDOW_SIZE, 100000) + setting(MAX_FRAME_SIZE, 32768),
                    handshake=False)
        f = c.wait(lambda f: f.type == SETTINGS and f.flags & ACK)
        check(f is not None, f"no SETTINGS ACK for the client's SETTINGS (6.5.3): {c.trace()}")
        check(f.payload == b"" and f.sid == 0, f"a SETTINGS ACK is empty, on stream 0: {f}")
        c.send(frame(SETTINGS, 0, 0, setting(HEADER_TABLE_SIZE, 8192)))  # a second one: acked too
        f = c.wait(lambda f: f.type == SETTINGS and f.flags & ACK)
        check(f is not None, f"no ACK for a second SETTINGS: {c.trace()}")
        served(connect, c)
        return "both acknowledged, then GET 200"
    t("client_settings_acked", settings_acked)

    def preface_then_ping(connect):
        c = connect(preface=None, handshake=False)
        c.send(PREFACE + frame(PING, 0, 0, b"12345678"))  # 3.4: the preface ends with SETTINGS
        return c.conn_error(PROTOCOL_ERROR)
    t("preface_then_ping_not_settings", preface_then_ping)
    t("settings_length_not_multiple_of_6",
      conn_error_after(frame(SETTINGS, 0, 0, setting(INITIAL_WINDOW_SIZE, 1)[:5]), FRAME_SIZE_ERROR))
    t("settings_ack_with_payload",
      conn_error_after(frame(SETTINGS, ACK, 0, setting(INITIAL_WINDOW_SIZE, 1)), FRAME_SIZE_ERROR))
    t("settings_initial_window_over_2^31-1",
      conn_error_after(frame(SETTINGS, 0, 0, setting(INITIAL_WINDOW_SIZE, 1 << 31)), FLOW_CONTROL_ERROR))
    t("settings_enable_push_2",
      conn_error_after(frame(SETTINGS, 0, 0, setting(ENABLE_PUSH, 2)), PROTOCOL_ERROR))
    t("settings_max_frame_size_16383",
      conn_error_after(frame(SETTINGS, 0, 0, setting(MAX_FRAME_SIZE, 16383)), PROTOCOL_ERROR))
    t("settings_on_stream_1",
      conn_error_after(frame(SETTINGS, 0, 1, setting(INITIAL_WINDOW_SIZE, 1000)), PROTOCOL_ERROR))

    def unknown_setting(connect):
        c = connect(handshake=False, settings=setting(0x99, 7) + setting(0xfff0, 1))
        f = c.wait(lambda f: f.type == SETTINGS and f.flags & ACK or f.type == GOAWAY)
        check(f is not None and f.type == SETTINGS, f"an unknown setting is ignored (6.5.2): {c.trace()}")
        served(connect, c)
        return "acknowledged, then GET 200"
    t("unknown_setting_ignored", unknown_setting)
    return t.result()


def group_ping_and_frame_size(c):
    v = setup(c)
    t = Checks(v)

    def ping(connect):
        c = connect()
        c.send(frame(PING, 0, 0, b"\x01veer\xfe\x00\x07"))
        f = c.wait(lambda f: f.type in (PING, GOAWAY))
        check(f is not None and f.type == PING, f"no PING answer: {c.trace()}")
        check(f.flags & ACK and f.payload == b"\x01veer\xfe\x00\x07" and f.sid == 0,
              f"the answer is a PING ACK with the same payload (6.7): {f}")
        c.send(frame(PING, ACK, 0, b"unasked!"))  # an ACK nobody asked for: no answer, no error
        served(connect, c)
        return str(f)
    t("ping_ack_same_payload", ping)
    t("ping_length_7", conn_error_after(frame(PING, 0, 0, b"1234567"), FRAME_SIZE_ERROR))
    t("ping_length_9", conn_error_after(frame(PING, 0, 0, b"123456789"), FRAME_SIZE_ERROR))
    t("ping_on_stream_1", conn_error_after(frame(PING, 0, 1, b"12345678"), PROTOCOL_ERROR))

    def big_data(connect):
        # RFC 9113 4.2: FRAME_SIZE_ERROR; for DATA a stream error is enough.
        c = connect()
        sid = c.request(req_fields("POST", "/big"), end=False)
        c.send(frame(DATA, END_STREAM, sid, b"x" * 16385))
        return c.stream_error(sid, FRAME_SIZE_ERROR, goaway_ok=True)
    t("data_over_max_frame_size", big_data)

    def big_headers(connect):
        # A frame carrying a field block alters the connection's state: a connection error.
        c = connect()
        fields = req_fields("GET", "/big", [(f"x-pad-{i}", "v" * 200) for i in range(90)])
        payload = block(fields)
        check(len(payload) > 16384, f"test: the block is {len(payload)} bytes")
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, c.sid(), payload))
        return c.conn_error(FRAME_SIZE_ERROR)
    t("headers_over_max_frame_size", big_headers)

    def own_frames(connect):
        c = connect()
        status, body = c.get("/bytes/100000", timeout=10)
        check(status == 200 and len(body) == 100000, f"GET /bytes/100000: {status} {len(body)}")
        data = [f for f in c.frames if f.type == DATA]
        too_big = [str(f) for f in c.frames if len(f.payload) > 16384]
        check(not too_big, f"veer's frames over 16384 bytes (4.2): {too_big[:3]}")
        return f"{len(data)} DATA frames, none over 16384"
    t("server_frames_within_max_frame_size", own_frames)
    return t.result()


def group_stream_states(c):
    v = setup(c)
    t = Checks(v)
    t("headers_on_even_stream",
      conn_error_after(frame(HEADERS, END_HEADERS | END_STREAM, 2, request_block("/even")), PROTOCOL_ERROR))

    def decreasing(connect):
        c = connect()
        c.next_sid = 5
        served(connect, c)
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block("/three")))
        return c.conn_error(PROTOCOL_ERROR)  # 5.1.1
    t("stream_id_decreasing", decreasing)
    t("data_on_idle_stream", conn_error_after(frame(DATA, END_STREAM, 1, b"hello"), PROTOCOL_ERROR))

    def data_half_closed(connect):
        c = connect()
        sid = c.sid()  # the answer waits 1 s upstream: the stream stays half-closed (remote)
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block("/sleep/1")) +
               frame(DATA, 0, sid, b"late"))
        return c.stream_error(sid, STREAM_CLOSED, goaway_ok=True)  # 5.1
    t("data_after_end_stream", data_half_closed)
    t("rst_stream_on_stream_0", conn_error_after(frame(RST_STREAM, 0, 0, u32(8)), PROTOCOL_ERROR))
    t("rst_stream_on_idle_stream", conn_error_after(frame(RST_STREAM, 0, 1, u32(8)), PROTOCOL_ERROR))

    def rst_length(connect):
        c = connect()
        sid = c.request(req_fields("POST", "/r"), end=False)
        c.send(frame(RST_STREAM, 0, sid, b"\x00\x00\x08"))
        return c.conn_error(FRAME_SIZE_ERROR)  # 6.4
    t("rst_stream_length_3", rst_length)

    def window_zero_stream(connect):
        c = connect()
        sid = c.request(req_fields("POST", "/w"), end=False)
        c.send(frame(WINDOW_UPDATE, 0, sid, u32(0)))
        # 6.9: a stream error; 5.4.1 lets an endpoint end the connection instead (nghttp2 does).
        return c.stream_error(sid, PROTOCOL_ERROR, goaway_ok=True)
    t("window_update_0_on_stream", window_zero_stream)
    t("window_update_0_on_connection", conn_error_after(frame(WINDOW_UPDATE, 0, 0, u32(0)), PROTOCOL_ERROR))
    t("window_update_length_3",
      conn_error_after(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"), FRAME_SIZE_ERROR))
    t("continuation_without_headers",
      conn_error_after(frame(CONTINUATION, END_HEADERS, 1, request_block("/c")), PROTOCOL_ERROR))

    def interrupted_block(connect):
        c = connect()
        b = request_block("/i")
        c.send(frame(HEADERS, END_STREAM, 1, b[:5]) + frame(PING, 0, 0, b"12345678"))
        return c.conn_error(PROTOCOL_ERROR)  # 6.2, 6.10: only CONTINUATION may follow
    t("header_block_interrupted_by_ping", interrupted_block)

    def bad_padding(connect):
        c = connect()
        sid = c.request(req_fields("POST", "/p"), end=False)
        c.send(frame(DATA, PADDED | END_STREAM, sid, bytes([10]) + b"abc"))  # pad 10 > 3 bytes left
        return c.conn_error(PROTOCOL_ERROR)  # 6.1
    t("data_padding_too_long", bad_padding)

    def unknown_type(connect):
        c = connect()
        c.send(frame(0xfa, 0xff, 0, b"whatever") + frame(0x20, 0, 1, b"\x00" * 20))
        served(connect, c)  # 4.1, 5.5
        return "ignored, then GET 200"
    t("unknown_frame_type_ignored", unknown_type)

    def priority(connect):
        c = connect()
        served(connect, c)  # stream 1, closed now
        c.send(frame(PRIORITY, 0, 1, u32(0) + b"\x10") +       # on a closed stream
               frame(PRIORITY, 0, 9, u32(0x80000001) + b"\xff") +  # on an idle one, exclusive
               frame(PRIORITY, 0, 3, u32(9) + b"\x00"))
        c.next_sid = 11
        served(connect, c)
        # and on an open stream, then with the HEADERS' PRIORITY flag
        sid = c.request(req_fields("POST", "/p"), end=False)
        c.send(frame(PRIORITY, 0, sid, u32(0) + b"\x20") + frame(DATA, END_STREAM, sid, b"body"))
        status, body = c.answer(sid)
        check(status == 200 and body.endswith(b"POST /p 4\n"), f"POST after PRIORITY: {status} {body!r}")
        sid = c.sid()
        c.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, sid,
                     u32(0) + b"\x0f" + request_block("/pf")))
        status, _ = c.answer(sid)
        check(status == 200, f"HEADERS with PRIORITY: {status}")
        return "PRIORITY on closed, idle and open streams and in HEADERS: all served"
    t("priority_accepted", priority)

    def priority_length(connect):
        c = connect()
        c.send(frame(PRIORITY, 0, 1, u32(0)))
        return c.stream_error(1, FRAME_SIZE_ERROR, goaway_ok=True)  # 6.3
    t("priority_length_4", priority_length)

    def self_dependency(connect):
        c = connect()
        sid = c.sid()
        c.send(frame(HEADERS, END_HEADERS | END_STREAM | PRIORITY_FLAG, sid,
                     u32(sid) + b"\x0f" + request_block("/self")))
        return c.stream_error(sid, PROTOCOL_ERROR, goaway_ok=True)  # 5.3.1
    t("headers_depending_on_itself", self_dependency)

    def padded_and_continued(connect):
        c = connect()
        b = request_block("/pc")
        sid = c.sid()
        c.send(frame(HEADERS, PADDED, sid, bytes([6]) + b[:3] + b"\0" * 6) +
               frame(CONTINUATION, 0, sid, b[3:7]) + frame(CONTINUATION, END_HEADERS, sid, b[7:]))
        c.send(frame(DATA, PADDED, sid, bytes([4]) + b"hello" + b"\0" * 4) +
               frame(DATA, END_STREAM, sid, b"!"))
        status, body = c.answer(sid)
        check(status == 200 and body.endswith(b"GET /pc 6\n"),
              f"padded HEADERS + 2 CONTINUATION + padded DATA: {status} {body!r}")
        return f"200 {body.strip().decode()!r} (padding not counted)"
    t("padding_and_continuation_served", padded_and_continued)

    def client_goaway(connect):
        c = connect()
        sid = c.sid()
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block("/sleep/0.5")))
        c.send(frame(GOAWAY, 0, 0, u32(0) + u32(NO_ERROR)))
        status, body = c.answer(sid)
        check(status == 200, f"the open stream is finished after the client's GOAWAY: {status}")
        t0 = time.monotonic()
        check(c.closes(), f"veer keeps the connection after the client's GOAWAY and the last stream: "
                          f"{c.trace()}")
        return f"stream {sid} got 200, then veer closed ({(time.monotonic() - t0) * 1000:.0f} ms later)"
    t("client_goaway_finishes_then_closes", client_goaway)
    return t.result()


def group_header_validation(c):
    v = setup(c)
    t = Checks(v)

    def reset(fields, end=True, then=b""):
        def fn(connect):
            c = connect()
            sid = c.request(fields, end=end)
            if then:
                c.send(then(sid))
            return c.stream_error(sid, PROTOCOL_ERROR)
        return fn
    base = req_fields("GET", "/h")
    t("uppercase_field_name", reset(base + [("X-Upper", "a")]))  # 8.2.1
    t("missing_method", reset([f for f in base if f[0] != ":method"]))  # 8.3.1
    t("missing_path", reset([f for f in base if f[0] != ":path"]))
    t("missing_scheme", reset([f for f in base if f[0] != ":scheme"]))
    t("empty_path", reset([(k, "" if k == ":path" else x) for k, x in base]))
    t("duplicate_path", reset(base + [(":path", "/again")]))
    t("unknown_pseudo_header", reset(base + [(":foo", "bar")]))  # 8.3
    t("response_pseudo_header_in_request", reset(base + [(":status", "200")]))
    t("pseudo_header_after_regular",
      reset([(":method", "GET"), (":scheme", "http"), ("x-a", "b"), (":path", "/h"),
             (":authority", "veer.test")]))
    t("connection_keep_alive", reset(base + [("connection", "keep-alive")]))  # 8.2.2
    t("transfer_encoding", reset(base + [("transfer-encoding", "chunked")]))
    t("te_gzip", reset(base + [("te", "gzip")]))
    t("content_length_contradicted", reset(  # 8.1.1: 10 declared, 5 sent
        req_fields("POST", "/cl", [("content-length", "10")]), end=False,
        then=lambda sid: frame(DATA, END_STREAM, sid, b"hello")))

    def te_trailers(connect):
        c = connect()
        sid = c.request(base + [("te", "trailers")])
        status, _ = c.answer(sid)
        check(status == 200, f"te: trailers is allowed (8.2.2): {status}")
        return "200"
    t("te_trailers_served", te_trailers)

    # RFC 7541 / RFC 9113 4.3: a block that does not decode is a COMPRESSION_ERROR.
    def hpack_error(raw):
        return conn_error_after(lambda c: frame(HEADERS, END_HEADERS | END_STREAM, c.sid(), raw),
                                COMPRESSION_ERROR)
    t("hpack_index_0", hpack_error(b"\x80" + request_block("/x")))
    t("hpack_index_past_tables", hpack_error(b"\x82\x86\xff\x80\x01"))  # index 127 + 128 = 255
    t("hpack_integer_overflow", hpack_error(b"\x82\xff\xff\xff\xff\xff\xff\xff\xff\x7f"))
    t("hpack_table_size_over_limit", hpack_error(b"\x3f\xe1\xff\x03" + request_block("/x")))  # 65536 > 4096
    return t.result()


def group_flow_control(c):
    # green is a listener whose accept queue is full: veer's connect to it hangs (the SYN is
    # dropped), so a stream routed there has nothing forwarded and no window given back.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname(), timeout=WAIT)
    try:
        bp = free_ports(1)[0]
        c.upstream("blue", bp)
        v = c.veer([f"127.0.0.1:{bp}"], [f"127.0.0.1:{hole.getsockname()[1]}"], {
            "health": {"enabled": False},
            "timeouts": {"idle": "3s", "connect": "1s"},
            "[[split.rules]]": [{"header": "x-stall", "equals": "1", "pool": "canary"}]})
        return flow_checks(v)
    finally:
        filler.close()
        hole.close()


def flow_checks(v):
    t = Checks(v)

    def overflow(connect):
        c = connect()
        check(c.initial == 65535, f"test: veer's initial stream window is {c.initial}")
        sid = c.request(req_fields("POST", "/stall", [("x-stall", "1")]), end=False)
        window = c.stream_window(sid)
        frames, left = [], window
        while left > 0:
            n = min(16384, left)
            frames.append(frame(DATA, 0, sid, b"w" * n))
            left -= n
        c.send(b"".join(frames))
        early = c.wait(lambda f: f.sid == sid or f.type == GOAWAY, timeout=0.3)
        check(early is None, f"the window itself is accepted: {c.trace()}")
        check(c.granted.get(sid, 0) == 0, f"test: veer gave window back for a stalled stream: {c.trace()}")
        c.send(frame(DATA, 0, sid, b"!"))  # one byte past the window veer advertised
        return c.stream_error(sid, FLOW_CONTROL_ERROR, goaway_ok=True)  # 6.9.1
    t("data_past_stream_window", overflow)

    def stream_window_overflow(connect):
        c = connect()
        sid = c.request(req_fields("POST", "/w"), end=False)
        c.send(frame(WINDOW_UPDATE, 0, sid, u32(0x7fffffff)))  # 65535 + 2^31-1
        return c.stream_error(sid, FLOW_CONTROL_ERROR)  # 6.9.1
    t("stream_window_update_past_2^31-1", stream_window_overflow)

    def body_in_pieces(connect):
        c = connect()
        total = 300_000
        sid = c.request(req_fields("POST", "/up"), end=False)
        sent, stalls = 0, 0
        while sent < total:
            room = min(c.window, c.stream_window(sid))
            if room <= 0:
                stalls += 1
                f = c.wait(lambda f: (f.type == WINDOW_UPDATE and f.sid in (0, sid)) or f.type == GOAWAY
                           or (f.sid == sid and f.type == RST_STREAM))
                check(f is not None and f.type == WINDOW_UPDATE,
                      f"no WINDOW_UPDATE after {sent} of {total} bytes: {c.trace()}")
                continue
            n = min(16384, room, total - sent)
            last = sent + n == total
            c.send(frame(DATA, END_STREAM if last else 0, sid, b"b" * n))
            c.window -= n
            c.granted[sid] = c.granted.get(sid, 0) - n
            sent += n
        status, body = c.answer(sid, timeout=10)
        check(status == 200 and body.endswith(f"POST /up {total}\n".encode()),
              f"the body arrives whole: {status} {body!r}")
        updates = [f for f in c.frames if f.type == WINDOW_UPDATE and f.sid == sid]
        check(stalls > 0 and updates, f"test: the body never waited for a window ({stalls} stalls)")
        return f"{total} bytes in {stalls} windows, {len(updates)} stream WINDOW_UPDATEs, 200"
    t("body_sent_as_windows_open", body_in_pieces)

    def respects_client_window(connect):
        c = connect(settings=setting(INITIAL_WINDOW_SIZE, 1000), auto_window=False)
        sid = c.sid()
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block("/bytes/5000")))
        got, granted, over = 0, 1000, []
        deadline = time.monotonic() + WAIT
        while True:
            f = c.read(deadline)
            check(f is not None, f"stream {sid} stops at {got} of 5000 bytes: {c.trace()}")
            if f.sid != sid:
                continue
            check(f.type != RST_STREAM, f"stream {sid}: {f}")
            if f.type == DATA:
                got += len(f.payload)
                if got > granted:
                    over.append(f"{got} > {granted}")
                if got == granted and not f.end:  # all we allowed: give 1000 more
                    granted += 1000
                    c.send(frame(WINDOW_UPDATE, 0, sid, u32(1000)))
            if f.end:
                break
        check(got == 5000 and not over, f"veer sent past the client's window: {over} ({got} bytes)")
        c.send(frame(WINDOW_UPDATE, 0, 0, u32(got)))
        served(connect, c)
        return f"5000 bytes in {granted // 1000} windows of 1000"
    t("server_respects_client_window", respects_client_window)
    return t.result()


GROUPS = [
    ("preface_and_settings", group_preface_and_settings),
    ("ping_and_frame_size", group_ping_and_frame_size),
    ("stream_states", group_stream_states),
    ("header_validation", group_header_validation),
    ("flow_control", group_flow_control),
]


def main():
    opts = suite_options(__doc__, GROUPS, ("--upstream", {"required": True}))
    if hpack is None or h2 is None:
        return not_run("h2_conformance", "missing: python3-h2 (scripts/deps test installs it)",
                       skip="missing python3-h2")
    passed, failed = run_cases(GROUPS, opts, lambda name: Case(name, opts))
    log(f"h2_conformance: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
