#!/usr/bin/env python3
"""Checks the split end to end: the green share over 10,000 requests at weights 1, 10 and
50, and the client errors wrk sees when the only green endpoint dies mid-run.

    bench/split_check.py [--requests 10000] [--wrk-seconds 10]
"""
import argparse, http.client, os, re, socket, subprocess, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--requests", type=int, default=10000)
ap.add_argument("--wrk-seconds", type=int, default=10)
ap.add_argument("--build", default=os.path.join(ROOT, "build"))
a = ap.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    end = time.time() + 10
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} not listening")


class Setup:
    def __init__(self, weight):
        self.dir = tempfile.mkdtemp(prefix="veer-split-")
        self.bp, self.gp, self.vp = free_port(), free_port(), free_port()
        self.procs = {}
        for name, port in (("blue", self.bp), ("green", self.gp)):
            self.procs[name] = subprocess.Popen([f"{a.build}/veer-upstream", "--name", name, "--port", str(port)],
                                                stderr=subprocess.DEVNULL)
            wait_port(port)
        cfg = os.path.join(self.dir, "veer.toml")
        with open(cfg, "w") as f:
            f.write(f"""[listener]\naddress = "127.0.0.1:{self.vp}"\nthreads = 1\n[admin]\nsocket = "{self.dir}/a.sock"\nhttp = ""\n
[pools.blue]\nendpoints = ["127.0.0.1:{self.bp}"]\n[pools.green]\nendpoints = ["127.0.0.1:{self.gp}"]\n
[split]\ncanary_weight = {weight}\n[health]\ninterval = "500ms"\ntimeout = "200ms"\n
[slo]\ndry_run = true\n[state]\npath = "{self.dir}/state.json"\n""")
        self.procs["veer"] = subprocess.Popen([f"{a.build}/veer", "--config", cfg], stderr=subprocess.DEVNULL)
        wait_port(self.vp)

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(10)


def share(weight):
    s = Setup(weight)
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
    s = Setup(30)
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
