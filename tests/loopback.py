"""What the Python tests (tests/faults, tests/ui) share: failures, loopback ports, polling
and one-shot GETs. Imported with tests/ on sys.path."""
import http.client
import socket
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
    veer; the caller runs it again on other ports."""
    if "Address already in use" in detail:
        return True
    for path in log_paths:
        try:
            with open(path, "rb") as f:
                if b"Address already in use" in f.read():
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
