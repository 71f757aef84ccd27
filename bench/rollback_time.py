#!/usr/bin/env python3
"""Measures how fast veer rolls back a bad canary: the time from the first failed canary
response a client sees to the canary's weight reaching 0 (SPEC 5; issue: under 1 s).

    bench/rollback_time.py [--rate 400] [--error-rate 0.5] [--runs 5]

Each run starts blue and green veer-upstreams and veer (threads 2, canary weight 50,
evaluate_every 200ms, min_requests 20, window 5s) on loopback, drives --rate requests/s,
turns green bad, and records (a) when the first 500 from green arrived and (b) when a
status poll first showed weight 0, plus the rollback event's own timestamp.
"""
import argparse, http.client, statistics, sys, threading, time
from datetime import datetime

from veerbench import BUILD, Setup

ap = argparse.ArgumentParser()
ap.add_argument("--rate", type=float, default=400)
ap.add_argument("--error-rate", type=float, default=0.5)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--build", default=BUILD)
a = ap.parse_args()
GATING = ('[health]\ninterval = "200ms"\ntimeout = "200ms"\n'
          '[slo]\nwindow = "5s"\nevaluate_every = "200ms"\nmin_requests = 20\n')


def one_run():
    s = Setup(a.build, threads=2, weight=50, extra=GATING)
    vp, gp = s.vp, s.gp
    try:
        stop = threading.Event()
        first_fail = []
        lock = threading.Lock()

        def client(i, clients=4):
            conn = http.client.HTTPConnection("127.0.0.1", vp, timeout=5)
            nxt = time.time()
            while not stop.is_set():
                try:
                    conn.request("GET", "/")
                    r = conn.getresponse()
                    body = r.read()
                    if r.status == 500 and body.startswith(b"green"):
                        with lock:
                            if not first_fail:
                                first_fail.append(time.time())
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", vp, timeout=5)
                nxt += clients / a.rate
                time.sleep(max(0, nxt - time.time()))
            conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)  # healthy traffic first: the window holds good evidence too
        http.client.HTTPConnection("127.0.0.1", gp, timeout=5).request("GET", f"/admin/error-rate/{a.error_rate}")
        seen_zero = None
        end = time.time() + 10
        while time.time() < end:
            if s.admin("status")["canary_weight"] == 0:
                seen_zero = time.time()
                break
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(5)
        ev = [e for e in s.admin("events 50")["events"] if e["kind"] == "rollback"]
        if not first_fail or not seen_zero or not ev:
            return None
        event_t = datetime.fromisoformat(ev[-1]["time"].replace("Z", "+00:00")).timestamp()
        return seen_zero - first_fail[0], event_t - first_fail[0], ev[-1]["reason"]
    finally:
        s.close()


results = []
for i in range(a.runs):
    r = one_run()
    if r is None:
        print(f"run {i + 1}: no rollback observed")
        continue
    results.append(r)
    print(f"run {i + 1}: weight 0 seen {r[0] * 1000:.0f} ms after the first failed canary response "
          f"(rollback event at +{r[1] * 1000:.0f} ms): {r[2]}")
if results:
    seen = [r[0] * 1000 for r in results]
    print(f"rollback time over {len(results)} runs at {a.rate:.0f} req/s, {a.error_rate:.0%} canary errors: "
          f"median {statistics.median(seen):.0f} ms, max {max(seen):.0f} ms")
sys.exit(0 if len(results) == a.runs else 1)
