#!/usr/bin/env python3
"""Checks the split end to end: the green share over 10,000 requests at weights 1, 10 and
50, and the client errors wrk sees when the only green endpoint dies mid-run.

    bench/split_check.py [--requests 10000] [--wrk-seconds 10]
"""
import argparse, http.client, re, subprocess, threading, time

from veerbench import BUILD, Setup

ap = argparse.ArgumentParser()
ap.add_argument("--requests", type=int, default=10000)
ap.add_argument("--wrk-seconds", type=int, default=10)
ap.add_argument("--build", default=BUILD)
a = ap.parse_args()
# Judging is left out (dry run): these runs measure the split, not the judge.
NO_ACTION = "[slo]\ndry_run = true\n[health]\ninterval = \"500ms\"\ntimeout = \"200ms\"\n"


def share(weight):
    s = Setup(a.build, weight=weight, extra=NO_ACTION)
    try:
        counts = {"blue": 0, "green": 0, "other": 0}
        lock = threading.Lock()

        def worker(n):
            conn = http.client.HTTPConnection("127.0.0.1", s.vp, timeout=5)
            mine = {"blue": 0, "green": 0, "other": 0}
            for _ in range(n):
                conn.request("GET", "/")
                r = conn.getresponse()
                who = r.read().split(b" ", 1)[0].decode()
                mine[who if r.status == 200 and who in mine else "other"] += 1
            conn.close()
            with lock:
                for k, v in mine.items():
                    counts[k] += v

        threads = [threading.Thread(target=worker, args=(a.requests // 4,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(counts.values())
        print(f"weight {weight:>2}%: green {counts['green']} of {total} = {100 * counts['green'] / total:.2f}%"
              f" (non-200: {counts['other']})")
    finally:
        s.close()


def dead_green():
    s = Setup(a.build, weight=30, extra=NO_ACTION)
    try:
        wrk = subprocess.Popen(["wrk", "-t1", "-c50", f"-d{a.wrk_seconds}s", f"http://127.0.0.1:{s.vp}/"],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(a.wrk_seconds / 3)
        s.procs["green"].kill()  # the only green endpoint dies mid-run: connects are refused
        out, _ = wrk.communicate(timeout=a.wrk_seconds + 30)
        total = re.search(r"(\d+) requests in", out).group(1)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(r"Socket errors: (.*)", out)
        print(f"green killed after {a.wrk_seconds / 3:.1f}s of a {a.wrk_seconds}s wrk -c50 run at weight 30: "
              f"{total} requests, non-2xx {non2xx.group(1) if non2xx else 0}, socket errors {sock.group(1) if sock else 'none'}")
    finally:
        s.close()


for w in (1, 10, 50):
    share(w)
dead_green()
