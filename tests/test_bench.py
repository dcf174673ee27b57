"""The benchmark runs end to end at tiny sizes: JSON and table shape, positive numbers.
No timing is asserted (speed is what ``make bench`` reports, not what tests check)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import types
from multiprocessing import Pipe
from pathlib import Path

import pytest
from rich.console import Console

from fullon_cache import bench
from fullon_cache.config import Settings
from fullon_cache.embedded import EmbeddedServer

TINY = ["--ops", "3", "--rounds", "2", "--ticks", "2000"]


def _check(doc: dict[str, object], names: list[str]) -> None:
    results = doc["results"]
    assert isinstance(results, list)
    assert [row["name"] for row in results] == names
    for row in results:
        for side in ("library", "raw"):
            summary = row[side]
            assert summary["n"] > 0
            for field in ("ops_per_s", "items_per_s", "mean_us", "p50_us", "p99_us"):
                assert summary[field] > 0, (row["name"], side, field)
        assert row["ratio_p50"] > 0 and row["ratio_mean"] > 0
    machine = doc["machine"]
    assert isinstance(machine, dict)
    assert machine["nproc"] >= 1 and machine["python"] and machine["server"]


def test_every_case_against_a_given_server(
    redis_server: EmbeddedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--url", redis_server.url, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    _check(doc, list(bench.CASES))
    ingest = doc["ingest"]
    assert ingest["published"] == 2 * 2 * (2000 // 100 * 100 + 2000 // 1000 * 1000)
    assert 0 < ingest["received"] <= ingest["published"]
    assert ingest["ticks_per_s_batch_1000"] > 0
    assert ingest["subscriber_disconnected"] is False
    printed = capsys.readouterr().out
    assert "set_tickers_1000" in printed and "ratio" in printed and "ingest" in printed
    # only the benchmark's namespace was used, and it is gone
    import redis

    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        assert not list(client.scan_iter(match="bench-*"))
    finally:
        client.close()


def test_private_server_uvloop_and_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default: a private server; ``--uvloop`` runs on uvloop when it can be imported."""
    monkeypatch.delenv(bench.URL_ENV, raising=False)
    try:
        import uvloop  # noqa: F401
    except ImportError:  # an install without the optional extra: a stand-in loop module
        import asyncio

        monkeypatch.setitem(
            sys.modules, "uvloop", types.SimpleNamespace(new_event_loop=asyncio.new_event_loop)
        )
    out = tmp_path / "b.json"
    assert (
        bench.main([*TINY, "--only", "get_price,near_get_price", "--uvloop", "--json", str(out)])
        == 0
    )
    doc = json.loads(out.read_text())
    _check(doc, ["get_price", "near_get_price"])
    assert doc["ingest"] == {}


def test_uvloop_missing_falls_back(
    redis_server: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    out = tmp_path / "b.json"
    argv = [*TINY, "--only", "set_ticker", "--uvloop", "--url", redis_server.url]
    assert bench.main([*argv, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["machine"]["event_loop"] == "asyncio"


def test_password_server_subscriber_authenticates(tmp_path: Path) -> None:
    with EmbeddedServer(password="s3cret") as server:
        out = tmp_path / "b.json"
        argv = [*TINY, "--only", "set_tickers_100", "--url", server.url, "--json", str(out)]
        assert bench.main(argv) == 0
        ingest = json.loads(out.read_text())["ingest"]
        assert ingest["received"] == ingest["published"] > 0


def test_subscriber_reports_a_disconnect() -> None:
    """A subscriber the server drops (as it drops a slow one) reports what it got."""
    with EmbeddedServer() as server:
        parent, child = Pipe()
        worker = threading.Thread(
            target=bench._subscriber, args=(server.host, server.port, None, "x:*", child)
        )
        worker.start()
        assert parent.recv() == "ready"
        with socket.create_connection((server.host, server.port)) as sock:
            # this test's own private server: drop its pub/sub clients
            sock.sendall(bench._resp("CLIENT", "KILL", "TYPE", "pubsub"))
            sock.recv(100)
        worker.join(10)
        assert parent.recv() == (0, True)


def test_arguments() -> None:
    config = bench.parse_args(["--only", " get_price , set_ticker ", "--ops", "5"])
    assert config.only == ("get_price", "set_ticker") and config.ops == 5
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "nope"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--rounds", "0"])
    with pytest.raises(ValueError, match="redis://"):
        bench.settings_for_url("http://localhost", "n")
    s = bench.settings_for_url("rediss://u:p%2F@h", "n")
    assert (s.host, s.port, s.db, s.username, s.password, s.ssl) == ("h", 6379, 0, "u", "p/", True)
    assert isinstance(bench.settings_for_url("redis://", "n"), Settings)


def test_render_reports_a_dropped_subscriber() -> None:
    console = Console(record=True, width=200)
    row = {"ops_per_s": 1.0, "p50_us": 1.0, "p99_us": 2.0}
    doc = {
        "machine": {
            "server": "redis 7",
            "python": "3",
            "event_loop": "asyncio",
            "nproc": 1,
            "cpu": "x",
        },
        "results": [
            {"name": "c", "round_trips": "1", "library": row, "raw": row, "ratio_p50": 1.0}
        ],
        "ingest": {"published": 10, "received": 3, "subscriber_disconnected": True},
    }
    bench.render(doc, console)
    text = console.export_text()
    assert "DISCONNECTED" in text and "received 3 of 10" in text


def test_module_entry_point() -> None:
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(bench.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "fullon_cache.bench", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0 and "--uvloop" in done.stdout
