"""gvtest - the harness for grapevine scenario tests.

Scenario tests start real processes (`grapevine run` nodes, `grapevine echo`
upstreams) on 127.0.0.1 and drive them with real clients. This module gives:

- binary(): the grapevine binary (GRAPEVINE_BIN, else build/grapevine);
- free_port(): a port on 127.0.0.1 that nobody listens on;
- Proc / Echo / Node: started processes whose stdout/stderr go to files, that
  are always killed at teardown (conftest.py) and at interpreter exit, and
  whose unexpected or non-zero exits (crashes, sanitizer reports) fail the test;
- wait_until() / wait_port(): polling with a deadline, never bare sleeps;
- raw HTTP helpers (RawConn) for what `requests` cannot express: pipelining,
  HTTP/1.0, Expect: 100-continue;
- rss_kb() / pss_kb(): memory of a process from /proc.

Processes register in the innermost open Scope; conftest.py opens one per test
(and one per session) and closes it at teardown, where everything still
running is stopped with SIGTERM (grapevine must then exit 0) and any problem
raises with the logs attached.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import requests

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# Timeouts are generous for slow (sanitizer) builds; GVTEST_TIMEOUT_SCALE
# multiplies every default deadline for even slower machines.
TIMEOUT_SCALE = float(os.environ.get("GVTEST_TIMEOUT_SCALE", "1"))
START_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0

# Lines in a process's stderr that mean a sanitizer found a bug even when the
# process exited 0 (e.g. UBSan without halt_on_error).
SANITIZER_PATTERNS = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"WARNING: ThreadSanitizer|ERROR: ThreadSanitizer"
)


class HarnessError(AssertionError):
    """The harness could not do what was asked (binary missing, port busy...)."""


class WaitTimeout(AssertionError):
    """wait_until() ran out of time."""


def scaled(seconds: float) -> float:
    return seconds * TIMEOUT_SCALE


# ---------------------------------------------------------------- binary ----


def binary() -> str:
    """Path of the grapevine binary under test; raises HarnessError if absent."""
    path = os.environ.get("GRAPEVINE_BIN") or str(REPO / "build" / "grapevine")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise HarnessError(
            f"grapevine binary not found at {path}: set GRAPEVINE_BIN or build it "
            f"(cmake -S . -B build && cmake --build build)"
        )
    return os.path.abspath(path)  # processes start in their own directories


# ----------------------------------------------------------------- ports ----

_handed_out: set[int] = set()
_rng = random.SystemRandom()


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def extension_binary() -> str:
    """build/grapevine-test: grapevine with the test-only plugins of
    tests/plugins/ linked in, built beside the grapevine binary."""
    path = Path(binary()).with_name("grapevine-test")
    if not path.exists():
        raise HarnessError(f"{path} is missing (cmake --build builds it with the tests)")
    return str(path)


def sanitized() -> bool:
    """True when the grapevine binary is an AddressSanitizer build."""
    return b"__asan_init" in Path(binary()).read_bytes()


def has_ipv6_loopback() -> bool:
    """True when a socket can be bound on [::1] (Docker's default network
    namespace has no IPv6 loopback)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a listener could bind host:port now (as servers do, with
    SO_REUSEADDR, so TIME_WAIT leftovers do not count as busy)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# Ports handed out are reserved across the test processes that run at once
# (ctest -j): a file per port, made with O_EXCL, holding the owner's pid,
# removed when that process exits. Without it two tests picked the same free
# port now and then: one node could not listen, or a health check reached
# another test's server on the port of a target it had just killed.
_PORT_DIR = Path(tempfile.gettempdir()) / "gvtest-ports"
_reserved: list[Path] = []
_ports_setup = [False]


def _release_ports() -> None:
    for f in _reserved:
        try:
            f.unlink()
        except OSError:
            pass


def _sweep_ports() -> None:
    """Drops reservations of processes gone for an hour (killed -9): old
    enough that no process is still making one of them."""
    now = time.time()
    try:
        files = list(_PORT_DIR.iterdir())
    except OSError:
        return
    for f in files:
        try:
            if now - f.stat().st_mtime > 3600 and not pid_alive(int(f.read_text() or 0)):
                f.unlink()
        except (OSError, ValueError):
            pass


def _reserve(port: int) -> bool:
    try:
        fd = os.open(_PORT_DIR / str(port), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    except OSError:
        return True  # no shared folder: this process's own bookkeeping only
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    _reserved.append(_PORT_DIR / str(port))
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on, that this process has not
    handed out before and that no other test process holds (see _reserve).
    Chosen at random below the ephemeral range, so the outgoing connections
    of the processes under test never take it."""
    lo, _ = _ephemeral_range()
    top = min(lo, 32768)
    if not _ports_setup[0]:
        _ports_setup[0] = True
        try:  # shared by every user's test processes, like /tmp itself
            _PORT_DIR.mkdir(exist_ok=True)
            os.chmod(_PORT_DIR, 0o1777)
        except OSError:
            pass
        _sweep_ports()
        atexit.register(_release_ports)
    if top - 20000 >= 1000:
        for _ in range(500):
            port = _rng.randrange(20000, top)
            if port not in _handed_out and port_is_free(port) and _reserve(port):
                _handed_out.add(port)
                return port
    # Fallback: let the kernel choose.
    for _ in range(100):
        s = socket.socket()
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise HarnessError("no free port found")


# ------------------------------------------------------------ waiting -------


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.01,
    max_interval: float = 0.1,
) -> Any:
    """Calls predicate until it returns something truthy and returns that.

    Exceptions from predicate count as "not yet" (a refused connection while a
    server starts); the last result and the last exception are in the
    WaitTimeout raised when `timeout` (scaled) seconds pass.
    """
    deadline = time.monotonic() + scaled(timeout)
    last: Any = None
    last_exc: BaseException | None = None
    delay = interval
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {scaled(timeout):g}s waiting for {what}"
            msg += f"; last result: {last!r}"
            if last_exc is not None:
                msg += f"; last error: {type(last_exc).__name__}: {last_exc}"
            raise WaitTimeout(msg)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, max_interval)


def can_connect(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, host: str = HOST, timeout: float = START_TIMEOUT,
              proc: "Proc | None" = None) -> None:
    """Waits until host:port accepts TCP connections. When proc is given and
    exits first, fails at once with its logs instead of waiting out the clock."""

    def ready() -> bool:
        if proc is not None and not proc.alive():
            # Reported here, with the logs: not again at teardown.
            proc.problems = [p for p in proc.problems if "exited on its own" not in p]
            raise HarnessError(
                f"{proc.label} exited with status {proc.returncode} before "
                f"{host}:{port} accepted connections\n{proc.logs()}"
            )
        return can_connect(port, host)

    try:
        wait_until(ready, timeout, f"{host}:{port} to accept connections")
    except WaitTimeout as e:
        if proc is not None:
            raise WaitTimeout(f"{e}\n{proc.logs()}") from None
        raise


# ------------------------------------------------------------ /proc --------


def _proc_field(pid: int, filename: str, field: str) -> int:
    for line in Path(f"/proc/{pid}/{filename}").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise HarnessError(f"no {field} in /proc/{pid}/{filename}")


def rss_kb(pid: int) -> int:
    """Resident set size of pid in KiB (VmRSS from /proc/PID/status)."""
    return _proc_field(pid, "status", "VmRSS")


def pss_kb(pid: int) -> int:
    """Proportional set size of pid in KiB (from /proc/PID/smaps_rollup)."""
    return _proc_field(pid, "smaps_rollup", "Pss")


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# ------------------------------------------------------------ processes -----

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not on Linux
    _libc = None


def _child_setup() -> None:
    # Runs in the child between fork and exec: die with the test runner, even
    # when it is SIGKILLed (a CTest timeout), so nothing outlives a run.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Scope:
    """A set of processes started together (one test, or the session)."""

    def __init__(self, name: str, tmpdir: Path):
        self.name = name
        self.tmpdir = Path(tmpdir)
        self.procs: list[Proc] = []
        self.counts: dict[str, int] = {}

    def problems(self) -> list[str]:
        return [p for proc in self.procs for p in proc.problems]

    def close(self) -> list[str]:
        """Stops every process still running; returns all problems found
        (non-zero exits, unexpected deaths, sanitizer reports)."""
        for proc in reversed(self.procs):
            proc.finish()
        return self.problems()

    def logs(self) -> str:
        return "\n".join(proc.logs() for proc in self.procs)


_scopes: list[Scope] = []
_all_procs: list["Proc"] = []
_fallback_tmp: Path | None = None


def push_scope(name: str, tmpdir: Path) -> Scope:
    scope = Scope(name, tmpdir)
    _scopes.append(scope)
    return scope


def pop_scope(scope: Scope) -> list[str]:
    if scope in _scopes:
        _scopes.remove(scope)
    return scope.close()


def current_scope() -> Scope:
    global _fallback_tmp
    if _scopes:
        return _scopes[-1]
    # Used outside pytest (a script importing gvtest): atexit still cleans up.
    if _fallback_tmp is None:
        _fallback_tmp = Path(tempfile.mkdtemp(prefix="gvtest-"))
        atexit.register(shutil.rmtree, _fallback_tmp, True)
    return push_scope("standalone", _fallback_tmp)


@atexit.register
def _kill_everything() -> None:
    for proc in _all_procs:
        proc.kill()


class Proc:
    """One started process, with stdout/stderr in files under the scope's dir.

    stop() asks it to exit (SIGTERM) and expects status 0; kill() SIGKILLs it
    and expects nothing. A process that dies on its own, exits non-zero when
    stopped, or prints a sanitizer report, leaves a problem that fails the
    test at teardown.
    """

    def __init__(self, label: str, argv: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None, expect_clean_exit: bool = True):
        self.label = label
        self.argv = [str(a) for a in argv]
        self.env = env
        self.scope = current_scope()
        self.dir = self.scope.tmpdir
        self.cwd = cwd or self.dir
        self.expect_clean_exit = expect_clean_exit
        self.problems: list[str] = []
        self.popen: subprocess.Popen | None = None
        self.returncode: int | None = None
        self._ended_by_us = True
        self._runs = 0
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
        self.scope.counts[slug] = self.scope.counts.get(slug, 0) + 1
        self._slug = f"{slug}.{self.scope.counts[slug]}"
        self.stdout_path = self.dir / f"{self._slug}.stdout"
        self.stderr_path = self.dir / f"{self._slug}.stderr"
        self.scope.procs.append(self)
        _all_procs.append(self)

    # -- life --
    def start(self) -> "Proc":
        if self.alive():
            raise HarnessError(f"{self.label} is already running")
        self._runs += 1
        mode = "ab" if self._runs > 1 else "wb"
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with open(self.stdout_path, mode) as out, open(self.stderr_path, mode) as err:
            if self._runs > 1:
                for f in (out, err):
                    f.write(f"\n---- restart #{self._runs - 1} ----\n".encode())
                    f.flush()
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.cwd,
                env=env, start_new_session=True, preexec_fn=_child_setup,
            )
        self.returncode = None
        self._ended_by_us = False
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise HarnessError(f"{self.label} was never started")
        return self.popen.pid

    def alive(self) -> bool:
        if self.popen is None:
            return False
        if self.returncode is None:
            rc = self.popen.poll()
            if rc is not None:
                self._record_exit(rc, by_us=False)
        return self.returncode is None

    def _record_exit(self, rc: int, by_us: bool) -> None:
        self.returncode = rc
        self._ended_by_us = by_us
        if not by_us:
            self.problems.append(f"{self.label} (pid {self.popen.pid}) exited on its own "
                                 f"with {describe_status(rc)}")

    def stop(self, timeout: float = 10.0, expect_status: int | None = 0) -> int:
        """SIGTERM, wait up to timeout (scaled), then SIGKILL. Returns the exit
        status (negative: killed by that signal). A status other than
        expect_status (None: any) is recorded as a problem."""
        if not self.alive():
            return self.returncode if self.returncode is not None else 0
        self.popen.send_signal(signal.SIGTERM)
        try:
            rc = self.popen.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self._killpg()
            rc = self.popen.wait()
            self._record_exit(rc, by_us=True)
            self.problems.append(f"{self.label} (pid {self.pid}) did not exit within "
                                 f"{scaled(timeout):g}s of SIGTERM; killed")
            return rc
        self._record_exit(rc, by_us=True)
        if expect_status is not None and self.expect_clean_exit and rc != expect_status:
            self.problems.append(f"{self.label} (pid {self.pid}) exited with "
                                 f"{describe_status(rc)} after SIGTERM, expected {expect_status}")
        return rc

    def kill(self) -> None:
        """SIGKILL (the whole process group); no expectations about the exit."""
        if self.popen is None or self.returncode is not None:
            return
        if self.popen.poll() is not None:
            self.alive()  # records the unexpected exit
            return
        self._killpg()
        rc = self.popen.wait()
        self._record_exit(rc, by_us=True)

    def _killpg(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def finish(self) -> None:
        """Teardown: stop if running, then scan stderr for sanitizer reports."""
        if self.popen is None:
            return
        if self.alive():
            self.stop()
        text = self._read(self.stderr_path)
        m = SANITIZER_PATTERNS.search(text)
        if m:
            problem = f"{self.label}: sanitizer report in stderr ({m.group(0)})"
            if problem not in self.problems:
                self.problems.append(problem)

    # -- memory --
    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def pss_kb(self) -> int:
        return pss_kb(self.pid)

    # -- logs --
    @staticmethod
    def _read(path: Path, limit: int = 64 * 1024) -> str:
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - limit))
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        return (f"[... {size - limit} bytes cut ...]\n" + text) if size > limit else text

    def logs(self) -> str:
        state = "running" if self.alive() else (
            "never started" if self.popen is None else describe_status(self.returncode))
        parts = [f"---- {self.label}: {' '.join(self.argv)} [{state}]"]
        for name, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            text = self._read(path)
            parts.append(f"-- {name} ({path}):" + ("\n" + text.rstrip() if text.strip() else " empty"))
        return "\n".join(parts)


def describe_status(rc: int | None) -> str:
    if rc is None:
        return "no exit yet"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


def run_cli(*args: str, timeout: float = 30.0, bin: str | None = None,
            **kw: Any) -> subprocess.CompletedProcess:
    """Runs `grapevine ARGS...` (or bin) to completion (validate, version,
    ctl) and returns the CompletedProcess with text stdout/stderr."""
    return subprocess.run([bin or binary(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=scaled(timeout), preexec_fn=_child_setup, **kw)


# ---------------------------------------------------------------- echo ------


class Echo(Proc):
    """`grapevine echo --listen 127.0.0.1:PORT --name NAME`, started and
    accepting connections on return (unless start=False)."""

    def __init__(self, name: str = "echo", port: int | None = None, start: bool = True):
        self.name = name
        self.port = port or free_port()
        super().__init__(f"echo {name}", [binary(), "echo", "--listen", self.address,
                                          "--name", name])
        if start:
            self.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}{path}"

    def start(self) -> "Echo":
        if not port_is_free(self.port):
            # A restart right after kill(): the port frees when the kernel has
            # closed the old socket; wait for that, briefly.
            wait_until(lambda: port_is_free(self.port), 5, f"port {self.port} to be free")
        super().start()
        wait_port(self.port, proc=self)
        return self

    def restart(self) -> "Echo":
        """Starts again on the same port after stop() or kill()."""
        if self.alive():
            self.stop()
        return self.start()

    def _post(self, path: str) -> int:
        return requests.post(self.url(path), timeout=HTTP_TIMEOUT).status_code

    def fail(self) -> None:
        """Makes /healthz answer 503 (POST /fail)."""
        assert self._post("/fail") == 200

    def recover(self) -> None:
        """Makes /healthz answer 200 again (POST /recover)."""
        assert self._post("/recover") == 200


# ---------------------------------------------------------------- node ------

_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:", re.M)


def _has_node_section(text: str) -> bool:
    return any(m.group(1) == "node" for m in _TOP_KEY.finditer(text))


def _node_section_value(text: str, key: str) -> str | None:
    """The value of node.<key> in block-style YAML we wrote ourselves."""
    in_node = False
    for line in text.splitlines():
        if re.match(r"^\S", line):
            in_node = line.split(":", 1)[0].strip() == "node"
            continue
        if in_node:
            m = re.match(rf"^\s+{re.escape(key)}\s*:\s*(\S+)", line)
            if m:
                return m.group(1).strip("'\"")
    return None


class Node(Proc):
    """A `grapevine run -c FILE` node.

    `config` holds the cluster part of the file (services, routes, ...). Unless
    it has its own top-level `node:` section, the harness writes one with free
    127.0.0.1 ports for listen/admin/gossip, a data_dir in the test's tmp dir
    and access_log off (plus `node_extra` lines, e.g. "workers: 1"). With its
    own `node:` section the config is used as is, and listen/admin are read
    from it. Started and ready (proxy port accepting, admin /health 200) on
    return unless start=False.
    """

    def __init__(self, config: str = "", name: str = "gw1", *, access_log: bool = False,
                 workers: int | None = None, node_extra: str = "",
                 args: Iterable[str] = (), env: dict[str, str] | None = None,
                 bin: str | None = None, start: bool = True):
        self.name = name
        cfg = _dedent(config)
        if _has_node_section(cfg):
            self.listen = _node_section_value(cfg, "listen") or "0.0.0.0:8080"
            self.admin = _node_section_value(cfg, "admin") or "127.0.0.1:9901"
            text = cfg
        else:
            self.listen = f"{HOST}:{free_port()}"
            self.admin = f"{HOST}:{free_port()}"
            self.gossip = f"{HOST}:{free_port()}"
            lines = [
                "node:",
                f"  name: {name}",
                f"  listen: {self.listen}",
                f"  admin: {self.admin}",
                f"  gossip: {self.gossip}",
                "  data_dir: DATA_DIR",
                f"  access_log: {'true' if access_log else 'false'}",
            ]
            if workers is not None:
                lines.append(f"  workers: {workers}")
            lines += ["  " + ln.strip() for ln in _dedent(node_extra).splitlines() if ln.strip()]
            text = "\n".join(lines) + "\n" + cfg
        self.port = int(self.listen.rsplit(":", 1)[1])
        self.admin_port = int(self.admin.rsplit(":", 1)[1])
        # The config path needs the scope's dir, known once Proc is set up.
        super().__init__(f"node {name}", [bin or binary(), "run", "-c", "CONFIG", *args], env=env)
        self.data_dir = self.dir / f"{self._slug}.data"
        self.data_dir.mkdir(exist_ok=True)
        self.config_path = self.dir / f"{self._slug}.yaml"
        self.config_text = text.replace("DATA_DIR", str(self.data_dir))
        self.config_path.write_text(self.config_text)
        self.argv[self.argv.index("CONFIG")] = str(self.config_path)
        if start:
            self.start()

    def start(self, ready: bool = True) -> "Node":
        super().start()
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_port(self.port, self._connect_host(self.listen), timeout, proc=self)
        wait_port(self.admin_port, self._connect_host(self.admin), timeout, proc=self)

        def healthy() -> bool:
            if not self.alive():
                raise HarnessError(f"{self.label} exited\n{self.logs()}")
            return self.admin_get("/health").status_code == 200

        wait_until(healthy, timeout, f"{self.label} admin /health to answer 200")

    @staticmethod
    def _connect_host(addr: str) -> str:
        """The host to connect to for a listen address ("[::1]:80" -> "::1")."""
        host = addr.rsplit(":", 1)[0].strip("[]")
        return HOST if host in ("0.0.0.0", "", "*") else host

    @staticmethod
    def _url_host(addr: str) -> str:
        host = Node._connect_host(addr)
        return f"[{host}]" if ":" in host else host

    def logs(self) -> str:
        return super().logs() + f"\n-- config ({self.config_path}):\n" + self.config_text.rstrip()

    # -- clients --
    def url(self, path: str = "/") -> str:
        return f"http://{self._url_host(self.listen)}:{self.port}{path}"

    def admin_url(self, path: str = "/") -> str:
        return f"http://{self._url_host(self.admin)}:{self.admin_port}{path}"

    def get(self, path: str = "/", **kw: Any):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.get(self.url(path), **kw)

    def admin_get(self, path: str, **kw: Any):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.get(self.admin_url(path), **kw)

    def admin_post(self, path: str, **kw: Any):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.post(self.admin_url(path), **kw)

    def admin_delete(self, path: str, **kw: Any):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.delete(self.admin_url(path), **kw)

    def admin_put(self, path: str, **kw: Any):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.put(self.admin_url(path), **kw)

    def admin_raw(self, timeout: float = HTTP_TIMEOUT) -> "RawConn":
        """A raw connection to the admin API (pipelining, hanging up early)."""
        return RawConn(self._connect_host(self.admin), self.admin_port, timeout)

    def raw(self, timeout: float = HTTP_TIMEOUT) -> "RawConn":
        return RawConn(self._connect_host(self.listen), self.port, timeout)

    def backends(self) -> list[dict]:
        """GET /backends flattened to [{"service", "address", "healthy", ...}]."""
        r = self.admin_get("/backends")
        r.raise_for_status()
        return flatten_backends(r.json())

    def backend_healthy(self, service: str, address: str) -> bool | None:
        for b in self.backends():
            if b.get("service") == service and b.get("address") == address:
                return bool(b.get("healthy"))
        return None

    def wait_backend(self, service: str, address: str, healthy: bool, timeout: float = 10) -> None:
        wait_until(lambda: self.backend_healthy(service, address) is healthy, timeout,
                   f"{service}/{address} to be {'healthy' if healthy else 'unhealthy'} "
                   f"in {self.label}'s /backends")

    def metrics(self) -> str:
        r = self.admin_get("/metrics")
        r.raise_for_status()
        return r.text


def flatten_backends(doc: Any, service: str | None = None) -> list[dict]:
    """Finds every target object ({"address", "healthy", ...}) in a /backends
    document and tags it with its service name, whichever way services are
    nested: a list of {"name"/"service": ..., "targets": [...]}, or a map
    keyed by service name."""
    out: list[dict] = []
    if isinstance(doc, list):
        for v in doc:
            out += flatten_backends(v, service)
    elif isinstance(doc, dict):
        if "address" in doc and "healthy" in doc:
            t = dict(doc)
            t.setdefault("service", service)
            out.append(t)
            return out
        name = next((doc[k] for k in ("service", "name") if isinstance(doc.get(k), str)), None)
        for k, v in doc.items():
            if not isinstance(v, (dict, list)):
                continue
            if name:
                sub = name
            elif k in ("targets", "backends", "services"):
                sub = service
            else:
                sub = k  # a map keyed by service name
            out += flatten_backends(v, sub)
    return out


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip("\n") + "\n" if text.strip() else ""


# ---------------------------------------------------------------- raw HTTP --


class RawResponse:
    def __init__(self, version: str, status: int, reason: str,
                 headers: list[tuple[str, str]], body: bytes):
        self.version, self.status, self.reason = version, status, reason
        self.headers, self.body = headers, body

    def header(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<RawResponse {self.version} {self.status} {self.reason} {len(self.body)}B>"


class RawConn:
    """A plain TCP connection speaking HTTP/1.x by hand."""

    def __init__(self, host: str, port: int, timeout: float = HTTP_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=scaled(timeout))
        self.sock.settimeout(scaled(timeout))
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _read_until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            if not self._fill():
                raise HarnessError(f"connection closed while waiting for {sep!r}; got {self.buf!r}")
        head, self.buf = self.buf.split(sep, 1)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise HarnessError(f"connection closed with {n - len(self.buf)} body bytes missing")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self) -> RawResponse:
        """Reads a status line and headers only (e.g. a 100 Continue)."""
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HarnessError(f"bad status line {lines[0]!r}")
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        return RawResponse(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, b"")

    def read_response(self, head_request: bool = False) -> RawResponse:
        """Reads one response, body framed by Content-Length, chunked encoding
        or connection close. 1xx responses are returned as they come."""
        r = self.read_head()
        if head_request or 100 <= r.status < 200 or r.status in (204, 304):
            return r
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if "chunked" in te:
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n"):  # trailers, then the empty line
                        pass
                    break
                body += self._read_exact(size)
                self._read_exact(2)
            r.body = body
        elif cl is not None:
            r.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            r.body, self.buf = self.buf, b""
        return r

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the peer closes the connection within timeout with
        nothing more sent."""
        self.sock.settimeout(scaled(timeout))
        try:
            return self.sock.recv(1) == b"" and not self.buf
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def request_bytes(method: str, path: str, host: str = "gv.test", headers: dict | None = None,
                  body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def lower_headers(headers: dict) -> dict:
    """A header map with lower-case names (echo may keep the client's case)."""
    return {k.lower(): v for k, v in headers.items()}
