from __future__ import annotations

from pathlib import Path

import pytest

from fullon_cache.config import Settings, get_settings, reload_settings, settings_from


def test_defaults_match_the_seed() -> None:
    s = Settings()
    assert (s.host, s.port, s.db, s.max_connections) == ("localhost", 6379, 0, 50)
    assert (s.ttl_exchange, s.ttl_symbol, s.ttl_order) == (86400, 86400, 3600)
    assert s.cluster_mode is False and s.cluster_nodes == ()


def test_every_variable_is_parsed() -> None:
    s = settings_from(
        {
            "REDIS_HOST": "h",
            "REDIS_PORT": "7001",
            "REDIS_DB": "3",
            "REDIS_USERNAME": "u",
            "REDIS_PASSWORD": "p",
            "REDIS_MAX_CONNECTIONS": "9",
            "REDIS_SOCKET_TIMEOUT": "1.5",
            "REDIS_SOCKET_CONNECT_TIMEOUT": "2",
            "REDIS_SSL": "yes",
            "REDIS_SSL_CA_CERTS": "/ca.pem",
            "CACHE_TTL_EXCHANGE": "10",
            "CACHE_TTL_SYMBOL": "11",
            "CACHE_TTL_ORDER": "12",
            "REDIS_CLUSTER_MODE": "on",
            "REDIS_CLUSTER_NODES": "a:1, b:2,,[::1]:3",
            "FULLON_CACHE_NAMESPACE": "ns.x-1",
            "UNRELATED": "ignored",
        }
    )
    assert (s.host, s.port, s.db, s.username, s.password) == ("h", 7001, 3, "u", "p")
    assert (s.max_connections, s.socket_timeout, s.socket_connect_timeout) == (9, 1.5, 2.0)
    assert s.ssl and s.ssl_ca_certs == "/ca.pem"
    assert (s.ttl_exchange, s.ttl_symbol, s.ttl_order) == (10, 11, 12)
    assert s.cluster_mode and s.cluster_nodes == (("a", 1), ("b", 2), ("::1", 3))
    assert s.namespace == "ns.x-1"


def test_empty_optional_values_mean_none() -> None:
    s = settings_from({"REDIS_PASSWORD": "", "REDIS_SSL": ""})
    assert s.password is None and s.ssl is False


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"REDIS_PORT": "abc"}, "REDIS_PORT"),
        ({"REDIS_SSL": "maybe"}, "REDIS_SSL"),
        ({"REDIS_CLUSTER_NODES": "nohostport"}, "REDIS_CLUSTER_NODES"),
        ({"REDIS_CLUSTER_NODES": ":70"}, "REDIS_CLUSTER_NODES"),
        ({"FULLON_CACHE_NAMESPACE": "a*b"}, "namespace"),
        ({"REDIS_CLUSTER_MODE": "true"}, "REDIS_CLUSTER_NODES"),
        ({"REDIS_SOCKET_TIMEOUT": "0"}, "socket_timeout"),
        ({"REDIS_SOCKET_TIMEOUT": "nan"}, "socket_timeout"),
    ],
)
def test_bad_values_are_rejected_with_the_variable_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        settings_from(env)


def test_redacted_hides_the_password() -> None:
    assert Settings(password="hunter2").redacted()["password"] == "***"
    assert Settings().redacted()["password"] is None


def test_dotenv_file_is_loaded_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("REDIS_PORT=7777\nREDIS_DB=5\nCACHE_TTL_ORDER=42\n")
    monkeypatch.setenv("DOTENV_FILE", str(env_file))
    monkeypatch.setenv("REDIS_DB", "6")
    monkeypatch.delenv("REDIS_PORT", raising=False)
    monkeypatch.delenv("CACHE_TTL_ORDER", raising=False)
    s = reload_settings()
    assert (s.port, s.db, s.ttl_order) == (7777, 6, 42)
    assert get_settings() is s
    env_file.write_text("REDIS_PORT=7778\n")
    assert reload_settings().port == 7778


def test_nearest_dotenv_is_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("FULLON_CACHE_NAMESPACE=fromfile\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    monkeypatch.delenv("DOTENV_FILE", raising=False)
    monkeypatch.delenv("FULLON_CACHE_NAMESPACE", raising=False)
    assert reload_settings().namespace == "fromfile"


def test_no_dotenv_anywhere_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOTENV_FILE", "")
    monkeypatch.delenv("FULLON_CACHE_NAMESPACE", raising=False)
    import fullon_cache.config as config

    monkeypatch.setattr(config, "find_dotenv", lambda usecwd: "")
    assert reload_settings().namespace == "fullon"


def test_settings_are_read_lazily_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    import fullon_cache.config as config

    monkeypatch.setattr(config, "_current", None)
    monkeypatch.setenv("CACHE_TTL_SYMBOL", "77")
    assert get_settings().ttl_symbol == 77


def test_repr_never_shows_the_password() -> None:
    text = repr(Settings(password="hunter2", database_url="postgresql://u:pw9@h/db"))
    assert "hunter2" not in text
    assert "pw9" not in text
    assert text.startswith("Settings(host='localhost'")


def test_env_example_lists_every_variable_with_its_default() -> None:
    from dotenv import dotenv_values

    from fullon_cache.config import _VARIABLES

    example = Path(__file__).resolve().parent.parent / ".env.example"
    values = dotenv_values(example)
    assert set(values) == {variable for variable, _ in _VARIABLES.values()}
    assert settings_from(values) == Settings()
