"""What the Python tests (tests/faults, tests/cluster, tests/gates, tests/ui, tests/vtc) share:
failures, loopback ports, polling, one-shot GETs, log tails and the runner of a suite's cases.
Imported with tests/ on sys.path."""
import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def free_ports(n):
    """n distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def lost_a_port(log_paths, detail=""):
    """Whether a run could not bind a port: free_ports() releases the ports it found, and a
    test running in parallel (ctest -j) may take one first. Such a run says nothing about
    veer; the caller runs it again on other ports. Any case: Go (etcd, Prometheus) writes
    "address already in use"."""
    if "address already in use" in detail.lower():
        return True
    for path in log_paths:
        try:
            with open(path, "rb") as f:
                if b"address already in use" in f.read().lower():
                    return True
        except OSError:
            pass
    return False


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def wait_until(what, predicate, timeout_s, procs=(), interval=0.02):
    """Polls predicate until it returns a true value (returned) or the deadline passes;
    fails at once if one of `procs` ((name, Popen) pairs) exits meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        for name, p in procs:
            if p.poll() is not None:
                raise Failure(f"{name} exited with {p.returncode} while waiting for {what}")
        try:
            got = predicate()
            if got:
                return got
        except (OSError, http.client.HTTPException, ValueError):
            pass
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval)


def http_get(port, path, headers=None, timeout=5):
    """One GET on a fresh connection: (status, body bytes, headers dict lower-case)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def log_tail(logs, n):
    """The last n lines of each log ({name: path}; unreadable ones skipped), one text, each line
    indented and named: `    name: line` (at most 300 characters of it)."""
    lines = []
    for name, path in logs.items():
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            continue
        lines += [f"    {name}: {line[:300]}" for line in text[-n:]]
    return "\n".join(lines)


def short_tmpdir(prefix):
    """A new temporary directory short enough for a Unix socket's path (sun_path) below it."""
    base = tempfile.gettempdir() if len(tempfile.gettempdir()) < 60 else "/tmp"
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def spawn(name, args, tmp, logs):
    """Starts `args` (stdin /dev/null), its output appended to tmp/NAME.log (a `#` in the name
    as `-`), that path recorded as logs[name]; the Popen."""
    path = os.path.join(tmp, name.replace("#", "-") + ".log")
    logs[name] = path
    with open(path, "ab") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(procs):
    """Stops (name, Popen) pairs by PID, in that order: SIGTERM to each still running, then
    waits for each (10 s, then SIGKILL)."""
    procs = list(procs)
    for name, p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name, p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def suite_options(doc, cases, *own):
    """A suite's command line: --veer, its `own` options ((flag, add_argument keywords) pairs),
    --only (some of `cases`) and --keep; the parsed options."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--veer", required=True)
    for flag, kw in own:
        ap.add_argument(flag, **kw)
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=[n for n, _ in cases],
                    help="run only these cases")
    ap.add_argument("--keep", action="store_true", help="keep every case's temporary directory")
    return ap.parse_args()


def not_run(title, why, skip=None):
    """A suite that cannot start: `FAIL: why` and `title: 0 passed, 1 failed`, exit status 1; or,
    given `skip` and VEER_ALLOW_SKIP=1 in the environment, `SKIP: skip` and 0."""
    if skip and os.environ.get("VEER_ALLOW_SKIP") == "1":
        log(f"SKIP: {skip}")
        return 0
    log(f"FAIL: {why}")
    log(f"{title}: 0 passed, 1 failed")
    return 1


def run_cases(cases, opts, new_case, after_lost=None):
    """Runs a suite: fn(new_case(name)) for each (name, fn) of `cases` (only those named in
    opts.only, if any), fn returning a detail or raising. Logs `PASS name (1.2s): detail`, or
    `FAIL name (1.2s): why` and the tail of the case's logs; returns (passed, failed).

    A case object has .tmp (its directory, removed once it passed unless opts.keep; else
    `    kept DIR` is logged), .log_tail(), .lost_a_port(detail) and .close(). A run that lost a
    port (see lost_a_port) runs again on a new case, three runs at most; after_lost(), if
    given, first drops what the cases share."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    passed = failed = 0
    for name, fn in cases:
        if opts.only and name not in opts.only:
            continue
        t0 = time.monotonic()
        for attempt in range(3):
            case, good, detail, tail = None, False, "", ""
            try:
                case = new_case(name)
                detail = fn(case)
                good = True
            except Failure as e:
                detail = str(e)
            except Exception as e:  # a broken case is a failed case, and the others still run
                detail = f"{type(e).__name__}: {e}"
            finally:
                if case:
                    if not good:
                        tail = case.log_tail()
                    case.close()
            lost = case.lost_a_port(detail) if case else lost_a_port((), detail)
            if good or attempt == 2 or not lost:
                break
            log(f"     {name}: a port was taken by another process before it was bound; again on others")
            if case:
                shutil.rmtree(case.tmp, ignore_errors=True)
            if after_lost:
                after_lost()
        took = time.monotonic() - t0
        if good:
            passed += 1
            log(f"PASS {name} ({took:.1f}s): {detail}")
        else:
            failed += 1
            log(f"FAIL {name} ({took:.1f}s): {detail}")
            if tail:
                log(tail)
        if case and good and not opts.keep:
            shutil.rmtree(case.tmp, ignore_errors=True)
        elif case:
            log(f"    kept {case.tmp}")
    return passed, failed
