"""An etcd cluster of 1 or 3 members on free loopback ports for the fleet tests (SPEC 11).

    with EtcdCluster(3, root=case_dir) as etcd:
        etcd.endpoints                  # ["http://127.0.0.1:P0", ...], in member order
        etcd.kill(0)                    # SIGKILL member 0 by PID
        etcd.start(0)                   # again on the same ports and data dir
        etcd.ctl("get", "--prefix", "/veer/shop/")   # etcdctl (API 3) on the live members

Each member has its own data dir and log file under one temporary directory; every wait
is bounded, a failed wait raises EtcdError (a loopback.Failure) carrying the tail of every
member's log, and close() kills the members by PID and removes the directory (unless
keep). A first start that loses a port to another test (free_ports() releases what it
finds) is tried again on other ports. Python standard library only; tests/ must be on sys.path.

`python3 tests/cluster/etcd_fixture.py` runs a self-check of this file against the
installed etcd (no veer needed).
"""

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from loopback import Failure, free_ports  # noqa: E402


class EtcdError(Failure):
    pass


class _LostPort(Exception):
    pass


def find_binary(name, explicit=None):
    """The etcd/etcdctl to run: `explicit`, $VEER_ETCD / $VEER_ETCDCTL, PATH, /usr/bin."""
    env = os.environ.get("VEER_" + name.upper())
    for candidate in (explicit, env, shutil.which(name), f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _child_env():
    # etcd and etcdctl read ETCD_* / ETCDCTL_* from the environment: none of the caller's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env["ETCDCTL_API"] = "3"
    return env


class Member:
    def __init__(self, index, client_port, peer_port, root):
        self.index = index
        self.name = f"m{index}"
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = os.path.join(root, self.name + ".data")
        self.log_path = os.path.join(root, self.name + ".log")
        self.proc = None
        self.starts = 0

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    def __init__(self, size=1, root=None, etcd=None, etcdctl=None, heartbeat_ms=100,
                 election_ms=1000, start_timeout=30, keep=False):
        if size < 1:
            raise ValueError("an etcd cluster has at least one member")
        self.size = size
        self.etcd = find_binary("etcd", etcd)
        self.etcdctl = find_binary("etcdctl", etcdctl)
        if not self.etcd or not self.etcdctl:
            raise EtcdError("etcd or etcdctl not found (Debian package etcd-server / etcd-client)")
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.keep = keep
        base = root or (tempfile.gettempdir() if len(tempfile.gettempdir()) < 60 else "/tmp")
        self.dir = tempfile.mkdtemp(prefix="etcd-", dir=base)
        self.members = []
        self.token = f"veer-test-{os.getpid()}-{int(time.time() * 1000)}"
        try:
            for attempt in range(3):
                try:
                    self._first_start(start_timeout)
                    return
                except _LostPort:
                    self._stop_all()
                    for m in self.members:
                        shutil.rmtree(m.data_dir, ignore_errors=True)
                        os.replace(m.log_path, m.log_path + f".lost-port-{attempt}")
                    if attempt == 2:
                        raise EtcdError("etcd lost a port to another process three times" + self.log_tail())
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ members

    def _first_start(self, timeout):
        ports = free_ports(2 * self.size)
        self.members = [Member(i, ports[2 * i], ports[2 * i + 1], self.dir) for i in range(self.size)]
        for m in self.members:
            self._launch(m)
        self.wait_healthy(timeout=timeout, lost_port_is=_LostPort)

    def _args(self, m):
        cluster = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [self.etcd,
                "--name", m.name,
                "--data-dir", m.data_dir,
                "--listen-client-urls", m.client_url,
                "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url,
                "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", cluster,
                "--initial-cluster-state", "new",  # ignored once the data dir holds a WAL
                "--initial-cluster-token", self.token,
                "--heartbeat-interval", str(self.heartbeat_ms),
                "--election-timeout", str(self.election_ms)]

    def _launch(self, m):
        m.starts += 1
        with open(m.log_path, "ab") as f:
            f.write(f"\n===== start #{m.starts} at {time.strftime('%H:%M:%S')}\n".encode())
            f.flush()
            m.proc = subprocess.Popen(self._args(m), stdout=f, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=_child_env())

    @property
    def endpoints(self):
        """Every member's client URL, in member order (also of the members down now)."""
        return [m.client_url for m in self.members]

    def endpoint(self, i):
        return self.members[i].client_url

    def live(self):
        """Indices of the members whose process runs."""
        return [m.index for m in self.members if m.running()]

    def pid(self, i):
        m = self.members[i]
        return m.proc.pid if m.running() else None

    def kill(self, i):
        """SIGKILL member i by PID and reap it."""
        m = self.members[i]
        if not m.running():
            raise EtcdError(f"etcd member {m.name} is not running")
        os.kill(m.proc.pid, signal.SIGKILL)
        try:
            m.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise EtcdError(f"etcd member {m.name} (pid {m.proc.pid}) still there 10 s after SIGKILL")

    def stop(self, i, timeout=10):
        """SIGTERM member i (SIGKILL after `timeout` s) and reap it."""
        m = self.members[i]
        if not m.running():
            return
        m.proc.send_signal(signal.SIGTERM)
        try:
            m.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            m.proc.kill()
            m.proc.wait(timeout=10)

    def start(self, i, wait=True, timeout=20):
        """Member i again, on its ports and data dir. With `wait`, until it is healthy
        (which needs a quorum: start a second member of three with wait=False first)."""
        m = self.members[i]
        if m.running():
            raise EtcdError(f"etcd member {m.name} is already running (pid {m.proc.pid})")
        self._launch(m)
        if wait:
            self.wait_healthy([i], timeout=timeout)

    # ------------------------------------------------------------------ health

    def healthy(self, i, timeout=1.0):
        """Whether member i answers GET /health with 200 {"health":"true"}."""
        m = self.members[i]
        if not m.running():
            return False
        conn = http.client.HTTPConnection("127.0.0.1", m.client_port, timeout=timeout)
        try:
            conn.request("GET", "/health")
            r = conn.getresponse()
            body = r.read()
            return r.status == 200 and json.loads(body).get("health") == "true"
        except (OSError, http.client.HTTPException, ValueError):
            return False
        finally:
            conn.close()

    def wait_healthy(self, indices=None, timeout=20, lost_port_is=None):
        """Until every member in `indices` (default: all) is healthy; EtcdError (with the
        logs) if one exits or the deadline passes."""
        indices = list(range(self.size)) if indices is None else list(indices)
        deadline = time.monotonic() + timeout
        pending = set(indices)
        while pending:
            for i in sorted(pending):
                m = self.members[i]
                if m.proc is None or m.proc.poll() is not None:
                    code = None if m.proc is None else m.proc.returncode
                    if lost_port_is and self._lost_port(m):
                        raise lost_port_is()
                    raise EtcdError(f"etcd member {m.name} exited ({code}) before it was healthy"
                                    + self.log_tail())
                if self.healthy(i):
                    pending.discard(i)
            if not pending:
                break
            if time.monotonic() >= deadline:
                names = ", ".join(self.members[i].name for i in sorted(pending))
                raise EtcdError(f"etcd member(s) {names} not healthy after {timeout}s" + self.log_tail())
            time.sleep(0.05)

    @staticmethod
    def _lost_port(m):
        try:
            with open(m.log_path, "rb") as f:
                return b"address already in use" in f.read().lower()
        except OSError:
            return False

    # ------------------------------------------------------------------ etcdctl

    def ctl(self, *args, endpoints=None, timeout=15, check=True):
        """etcdctl (ETCDCTL_API=3) with `args` against `endpoints` (default: the live
        members). Its stdout; EtcdError on a non-zero exit when `check`."""
        if endpoints is None:
            endpoints = [self.members[i].client_url for i in self.live()] or self.endpoints
        cmd = [self.etcdctl, "--endpoints", ",".join(endpoints), "--dial-timeout", "2s",
               "--command-timeout", f"{max(1, int(timeout) - 2)}s"] + [str(a) for a in args]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=_child_env(),
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EtcdError(f"etcdctl {' '.join(map(str, args))}: no answer in {timeout}s")
        out = p.stdout.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise EtcdError(f"etcdctl {' '.join(map(str, args))}: exit {p.returncode}: "
                            f"{p.stderr.decode('utf-8', 'replace').strip()[:400]}")
        return out

    def get_prefix(self, prefix, **kw):
        """[(key, value)] of every key starting with `prefix`, in key order (str, UTF-8)."""
        out = json.loads(self.ctl("get", "--prefix", prefix, "-w", "json", **kw))
        return [(base64.b64decode(kv["key"]).decode("utf-8", "replace"),
                 base64.b64decode(kv.get("value", "")).decode("utf-8", "replace"))
                for kv in out.get("kvs", [])]

    def member_status(self):
        """{index: {"id": member id, "leader": raft leader's id, "raft_term": ..}} for
        the live members that answer."""
        got = {}
        for i in self.live():
            try:
                out = json.loads(self.ctl("endpoint", "status", "-w", "json",
                                          endpoints=[self.endpoint(i)], timeout=5))
            except (EtcdError, ValueError):
                continue
            for item in out:
                st = item.get("Status", {})
                got[i] = {"id": st.get("header", {}).get("member_id"), "leader": st.get("leader"),
                          "raft_term": st.get("raft_term")}
        return got

    def leader_index(self):
        """The index of the member that is raft leader now, or None."""
        st = self.member_status()
        ids = {s["id"]: i for i, s in st.items()}
        leaders = {s["leader"] for s in st.values() if s["leader"]}
        if len(leaders) != 1:
            return None
        return ids.get(leaders.pop())

    def move_leader(self, i, timeout=10):
        """Makes member i the raft leader (etcdctl move-leader), bounded."""
        deadline = time.monotonic() + timeout
        while True:
            lead = self.leader_index()
            if lead == i:
                return
            if lead is not None:
                target = self.member_status().get(i, {}).get("id")
                if target is not None:
                    self.ctl("move-leader", format(int(target), "x"), endpoints=[self.endpoint(lead)],
                             check=False, timeout=8)
            if time.monotonic() >= deadline:
                raise EtcdError(f"etcd member m{i} did not become raft leader in {timeout}s "
                                f"(leader now: {self.leader_index()})" + self.log_tail())
            time.sleep(0.2)

    # ------------------------------------------------------------------ logs, close

    def log_tail(self, n=15):
        lines = []
        for m in self.members:
            try:
                with open(m.log_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            lines += [f"    etcd {m.name}: {line[:300]}" for line in text[-n:]]
        return ("\n" + "\n".join(lines)) if lines else ""

    def _stop_all(self):
        # SIGKILL: the data is thrown away, and members stopped together with SIGTERM wait
        # seconds for each other (leadership transfer) before they exit.
        for m in self.members:
            if m.running():
                m.proc.kill()
        for m in self.members:
            if m.proc is None:
                continue
            try:
                m.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        self._stop_all()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---------------------------------------------------------------------- self-check

def _self_check():
    t0 = time.monotonic()
    with EtcdCluster(1) as one:
        assert one.healthy(0)
        one.ctl("put", "/veer/x/release", "r1")
        assert one.get_prefix("/veer/x/") == [("/veer/x/release", "r1")]
        one.kill(0)
        assert not one.healthy(0) and one.live() == []
        one.start(0)
        assert one.get_prefix("/veer/x/release") == [("/veer/x/release", "r1")]
        one.stop(0)
        one.start(0)
        print(f"1 member: ok ({time.monotonic() - t0:.1f}s) at {one.endpoints}")
        d = one.dir
    assert not os.path.exists(d), "close() left its directory"
    t0 = time.monotonic()
    with EtcdCluster(3) as three:
        print(f"  3 members healthy after {time.monotonic() - t0:.1f}s")
        three.ctl("put", "k", "v")
        three.move_leader(0)
        assert three.leader_index() == 0
        three.kill(0)
        t1 = time.monotonic()
        three.wait_healthy(three.live())  # two of three: a quorum, once they elect a leader
        print(f"  new raft leader {time.monotonic() - t1:.1f}s after the leader's kill")
        three.ctl("put", "k", "v2")
        assert three.get_prefix("k") == [("k", "v2")]
        three.start(0)
        assert three.get_prefix("k", endpoints=[three.endpoint(0)]) == [("k", "v2")]
        three.stop(1)
        three.stop(2)
        assert not three.healthy(0), "one of three members healthy without a quorum"
        three.start(1, wait=False)
        three.start(2)
        three.wait_healthy()
        print(f"3 members: ok ({time.monotonic() - t0:.1f}s) at {three.endpoints}")


if __name__ == "__main__":
    _self_check()
