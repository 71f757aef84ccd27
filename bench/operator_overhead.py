#!/usr/bin/env python3
"""What the operator surface costs the data path, and how fast a reload takes effect.

    bench/operator_overhead.py [--reps 3] [--seconds 10]

(a) wrk -t1 -c50 through veer (threads 1) with and without /metrics scraped every 100 ms
    and /status polled every second (what the status page does), interleaved;
(b) the time from sending `reload` (a new split rule in the file) to the first request
    that the new rule routes, over 20 reloads.
"""
import argparse, http.client, re, statistics, subprocess, threading, time

from veerbench import BUILD, Setup

ap = argparse.ArgumentParser()
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--seconds", type=int, default=10)
ap.add_argument("--build", default=BUILD)
a = ap.parse_args()

s = Setup(a.build, weight=10, admin_http=True)
vp, hp = s.vp, s.hp
try:
    def wrk():
        out = subprocess.run(["wrk", "-t1", "-c50", f"-d{a.seconds}s", f"http://127.0.0.1:{vp}/"],
                             capture_output=True, text=True, timeout=a.seconds + 30).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def scraper(stop):
        n = 0
        while not stop.is_set():
            c = http.client.HTTPConnection("127.0.0.1", hp, timeout=5)
            c.request("GET", "/metrics" if n % 10 else "/status")
            c.getresponse().read()
            c.close()
            n += 1
            stop.wait(0.1)

    quiet, scraped = [], []
    for _ in range(a.reps):
        quiet.append(wrk())
        stop = threading.Event()
        t = threading.Thread(target=scraper, args=(stop,))
        t.start()
        scraped.append(wrk())
        stop.set()
        t.join()
    q, sc = statistics.median(quiet), statistics.median(scraped)
    print(f"(a) requests/s, median of {a.reps}: {q:,.0f} without scraping, {sc:,.0f} with /metrics every 100 ms "
          f"and /status every 1 s: {100 * (sc - q) / q:+.1f}%  (runs: {[round(x) for x in quiet]} vs {[round(x) for x in scraped]})")

    times = []
    for i in range(20):
        header = f"X-Reload-{i}"
        s.write_config(s.base + f'\n[[split.rules]]\nheader = "{header}"\nequals = "yes"\npool = "green"\n')
        conn = http.client.HTTPConnection("127.0.0.1", vp, timeout=5)
        t0 = time.perf_counter()
        assert s.admin("reload")["ok"]
        while True:
            conn.request("GET", "/", headers={header: "yes"})
            r = conn.getresponse()
            if r.read().startswith(b"green"):
                break
        times.append((time.perf_counter() - t0) * 1000)
        conn.close()
    print(f"(b) reload to the new rule serving, over 20 reloads: median {statistics.median(times):.2f} ms, "
          f"max {max(times):.2f} ms (includes the admin round trip and one proxied request)")
finally:
    s.close()
