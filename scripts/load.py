#!/usr/bin/env python3
"""A small, bounded HTTP load: keep-alive GETs from a few threads at a target rate.

    scripts/load.py [--url http://127.0.0.1:8080/] [--rate 200] [--clients 4] [--seconds 60]

Stops after --seconds (or on SIGTERM/SIGINT) and prints what it saw per status and pool.
"""
import argparse, collections, http.client, signal, threading, time, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--url", default="http://127.0.0.1:8080/")
ap.add_argument("--rate", type=float, default=200)
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--seconds", type=float, default=60)
a = ap.parse_args()
u = urllib.parse.urlparse(a.url)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
seen = collections.Counter()
lock = threading.Lock()

def client(i):
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
    n = 0
    while not stop.is_set():
        try:
            conn.request("GET", u.path or "/", headers={"X-User-Id": f"user-{i}-{n % 50}"})
            r = conn.getresponse()
            body = r.read().decode(errors="replace")
            key = (r.status, body.split(" ", 1)[0])
        except (OSError, http.client.HTTPException):
            key = (0, "-")
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=5)
        with lock:
            seen[key] += 1
        n += 1
        stop.wait(a.clients / a.rate)
    conn.close()

threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(a.clients)]
for t in threads:
    t.start()
stop.wait(a.seconds)
stop.set()
for t in threads:
    t.join(10)
print("load: " + ", ".join(f"{n} x {s} from {p}" for (s, p), n in sorted(seen.items())))
