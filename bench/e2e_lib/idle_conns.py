#!/usr/bin/env python3
"""Opens COUNT keep-alive connections to 127.0.0.1:PORT, sends one GET / on each and reads
its answer, then holds them all idle until SIGTERM (or --hold seconds).

    idle_conns.py PORT COUNT READY_FILE [--hold S] [--tls]

--tls speaks TLS (the certificate is not checked: it is a memory measurement).

When every connection is open and answered, writes "opened answered green" to READY_FILE
(green = answers from the green backend, a check of the 90/10 split).
"""
import argparse, os, resource, signal, socket, ssl, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("count", type=int)
ap.add_argument("ready_file")
ap.add_argument("--hold", type=float, default=120)
ap.add_argument("--tls", action="store_true")
a = ap.parse_args()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard < a.count + 64:
    sys.exit(f"idle_conns: RLIMIT_NOFILE {hard} is too low for {a.count} connections")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: idle_conns\r\n\r\n"

def answer(s):
    """Reads one response (Content-Length framed) and returns its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the head")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 2"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk
    return body

TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE

held, green, failures = [], 0, 0
for _ in range(a.count):
    if failures >= 100:
        break
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", a.port))
        if a.tls:
            s = TLS.wrap_socket(s, server_hostname="localhost")
        s.sendall(REQUEST)
        green += answer(s).startswith(b"green")
        held.append(s)
    except OSError as e:
        failures += 1
        print(f"idle_conns: {e}", file=sys.stderr)
        s.close()

with open(a.ready_file + ".tmp", "w") as f:
    f.write(f"{a.count} {len(held)} {green}\n")
os.rename(a.ready_file + ".tmp", a.ready_file)
time.sleep(a.hold)
