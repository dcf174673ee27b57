"""Least-privilege Redis ACL users for the library, as code (tested in
``tests/reliability/test_security.py``).

Two roles, both confined to one key namespace (``FULLON_CACHE_NAMESPACE``): keys
``<ns>:*`` and pub/sub channels ``<ns>:*``.

* ``service`` - the ticker, OHLCV, account and bot services, order executors: every
  command the library sends (reads, writes, Lua scripts, blocking pops, pub/sub,
  ``INFO`` for health, the ``CLUSTER`` topology reads of a cluster client) and no
  ``@dangerous`` one (no ``FLUSHALL``/``FLUSHDB``, ``KEYS``, ``CONFIG``, ``DEBUG``,
  ``SHUTDOWN``, ``ACL``, ``MONITOR``, ``SCRIPT FLUSH``...).
* ``dashboard`` - read-only: ``@read`` commands, subscribing (never publishing),
  connection commands, ``INFO`` and the cluster topology reads. Writes are refused
  by Redis (``NOPERM``) and reach the caller as
  :class:`~fullon_cache.exceptions.CachePermissionError`. Library reads never write,
  so every ``get_*`` works for a dashboard; maintenance calls such as
  ``OrdersCache.prune_orders`` are writes and are refused.

Create a user with ``ACL SETUSER <name> <rules...> ><password>`` (on every node of a
cluster), e.g. ``redis-cli ACL SETUSER fullon-svc $(rules) '>secret'``; then set
``REDIS_USERNAME`` / ``REDIS_PASSWORD``. Keys are not hidden from ``SCAN`` (it is
keyless in Redis ACLs): a user can list other namespaces' key names but never read or
write them.

Example:
    >>> acl_rules("fullon", "dashboard")[:4]
    ['reset', 'on', '~fullon:*', '&fullon:*']
"""

from __future__ import annotations

from typing import Final

from fullon_cache.config import Settings

__all__ = ["ROLES", "acl_rules"]

_TOPOLOGY: Final = (
    "+info",
    "+cluster|slots",
    "+cluster|shards",
    "+cluster|nodes",
    "+cluster|info",
    "+cluster|myid",
)

ROLES: Final[dict[str, tuple[str, ...]]] = {
    "service": ("+@all", "-@dangerous", *_TOPOLOGY),
    "dashboard": (
        "-@all",
        "+@read",
        "+@connection",
        "-@dangerous",
        "+subscribe",
        "+psubscribe",
        "+unsubscribe",
        "+punsubscribe",
        *_TOPOLOGY,
    ),
}
"""Command rules of each role, applied after ``reset`` (which starts from ``-@all``)."""


def acl_rules(namespace: str, role: str) -> list[str]:
    """The ``ACL SETUSER`` rules (without the password) giving ``role`` access to
    ``namespace``: ``'service'`` (read-write) or ``'dashboard'`` (read-only).

    Raises TypeError for non-str arguments and ValueError for an unknown role or a
    namespace that ``FULLON_CACHE_NAMESPACE`` would refuse.

    Example:
        >>> rules = acl_rules("fullon", "service")
        >>> rules[:4], "-@dangerous" in rules
        (['reset', 'on', '~fullon:*', '&fullon:*'], True)
    """
    if not isinstance(namespace, str) or not isinstance(role, str):
        raise TypeError("namespace and role must be str")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {sorted(ROLES)}")
    Settings(namespace=namespace)  # same validation as the setting: no glob characters
    return ["reset", "on", f"~{namespace}:*", f"&{namespace}:*", *ROLES[role]]
