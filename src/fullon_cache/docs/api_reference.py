"""API reference of every cache, generated at import time from the code itself.

Nothing here is written by hand: each constant is rendered from the live classes
(public methods, their signatures and their docstrings), so the reference cannot drift
from the implementation. One constant per cache (``TICK_CACHE``, ``ORDERS_CACHE``, ...,
``CACHE_MANAGER``), plus ``MODELS``, ``ERRORS`` and ``API_REFERENCE`` (everything).

Example:
    >>> from fullon_cache.docs import api_reference
    >>> "BaseCache.ping() -> str" in api_reference.BASE_CACHE
    True
    >>> api_reference.TICK_CACHE.splitlines()[0]
    '## TickCache'
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

__all__ = [
    "ACCOUNT_CACHE",
    "API_REFERENCE",
    "ASYNC_CACHE",
    "BASE_CACHE",
    "BOT_CACHE",
    "CACHES",
    "CACHE_MANAGER",
    "ERRORS",
    "EXCHANGE_CACHE",
    "MODELS",
    "OHLCV_CACHE",
    "ORDERS_CACHE",
    "PROCESS_CACHE",
    "REDIS_CACHE",
    "SYMBOL_CACHE",
    "TICK_CACHE",
    "TRADES_CACHE",
    "describe_class",
    "describe_member",
    "format_signature",
    "load_class",
    "public_members",
    "render",
]

# constant name -> (module, class)
CACHES: dict[str, tuple[str, str]] = {
    "BASE_CACHE": ("fullon_cache.base_cache", "BaseCache"),
    "PROCESS_CACHE": ("fullon_cache.process_cache", "ProcessCache"),
    "EXCHANGE_CACHE": ("fullon_cache.exchange_cache", "ExchangeCache"),
    "SYMBOL_CACHE": ("fullon_cache.symbol_cache", "SymbolCache"),
    "TICK_CACHE": ("fullon_cache.tick_cache", "TickCache"),
    "ACCOUNT_CACHE": ("fullon_cache.account_cache", "AccountCache"),
    "ORDERS_CACHE": ("fullon_cache.orders_cache", "OrdersCache"),
    "TRADES_CACHE": ("fullon_cache.trades_cache", "TradesCache"),
    "BOT_CACHE": ("fullon_cache.bot_cache", "BotCache"),
    "OHLCV_CACHE": ("fullon_cache.ohlcv_cache", "OHLCVCache"),
    "ASYNC_CACHE": ("fullon_cache.async_cache", "AsyncCache"),
    "REDIS_CACHE": ("fullon_cache.redis_cache", "RedisCache"),
    "CACHE_MANAGER": ("fullon_cache.manager", "CacheManager"),
}

_MODELS: tuple[str, ...] = ("Tick", "Symbol", "CatExchange", "Exchange", "Order", "Trade")
_MODELS += ("Position", "Balance", "Bot")
_ERRORS: tuple[str, ...] = ("CacheError", "CacheConnectionError", "CacheTimeoutError")
_ERRORS += ("CachePermissionError", "CacheDataError", "CircuitOpenError")


class _Annotation:
    """An annotation that prints as its source text (no quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _plain(annotation: Any) -> Any:
    if isinstance(annotation, str):
        return _Annotation(annotation)
    return annotation


def format_signature(function: Callable[..., Any]) -> str:
    """The signature of ``function`` as written in its source (annotations unquoted,
    ``self``/``cls`` dropped).

    Example:
        >>> def f(self, symbol: str, exchange: str | None = None) -> float: ...
        >>> format_signature(f)
        '(symbol: str, exchange: str | None = None) -> float'
    """
    signature = inspect.signature(function)
    parameters = [
        parameter.replace(annotation=_plain(parameter.annotation))
        for parameter in signature.parameters.values()
        if parameter.name not in ("self", "cls")
    ]
    return str(
        signature.replace(
            parameters=parameters, return_annotation=_plain(signature.return_annotation)
        )
    )


def _kind(member: Any) -> str:
    if isinstance(member, property):
        return "property"
    if isinstance(member, classmethod):
        return "classmethod"
    if isinstance(member, staticmethod):
        return "staticmethod"
    if inspect.isasyncgenfunction(member):
        return "async generator"
    if inspect.iscoroutinefunction(member):
        return "async"
    return "method"


def public_members(cls: type) -> list[tuple[str, Any]]:
    """The public methods and properties a class defines itself (not inherited), in
    source order.

    Example:
        >>> class Shown:
        ...     def method(self) -> None: ...
        ...     def _hidden(self) -> None: ...
        >>> [name for name, _ in public_members(Shown)]
        ['method']
    """
    return [
        (name, member)
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (callable(member) or isinstance(member, (property, classmethod, staticmethod)))
    ]


def describe_member(cls: type, name: str, member: Any) -> str:
    """One method or property of ``cls``: heading with signature and kind, then its
    docstring.

    Example:
        >>> from fullon_cache.base_cache import BaseCache
        >>> describe_member(BaseCache, "ping", BaseCache.ping).splitlines()[0]
        '### BaseCache.ping() -> str  *(async)*'
    """
    kind = _kind(member)
    if isinstance(member, property):
        heading = f"### {cls.__name__}.{name}  *(property)*"
        doc = inspect.getdoc(member)
    else:
        function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        heading = f"### {cls.__name__}.{name}{format_signature(function)}  *({kind})*"
        doc = inspect.getdoc(function)
    return f"{heading}\n\n{doc or '(no docstring)'}\n"


def describe_class(cls: type) -> str:
    """A Markdown reference of one class: its docstring, its bases and each public
    method or property it defines.

    Example:
        >>> from fullon_cache.base_cache import BaseCache
        >>> "### BaseCache.prepare_cache() -> None" in describe_class(BaseCache)
        True
    """
    bases = ", ".join(base.__name__ for base in cls.__bases__ if base is not object)
    parts = [f"## {cls.__name__}", ""]
    if bases:
        parts += [f"Bases: {bases} (their methods are documented there).", ""]
    parts += [f"`{cls.__module__}.{cls.__name__}`", "", inspect.getdoc(cls) or "", ""]
    parts += [describe_member(cls, name, member) for name, member in public_members(cls)]
    return "\n".join(parts)


def load_class(module: str, name: str) -> type | None:
    """The class ``name`` of ``module``, or None when that module is not part of this
    build.

    Example:
        >>> load_class("fullon_cache.base_cache", "BaseCache").__name__
        'BaseCache'
        >>> load_class("fullon_cache.no_such_module", "Nothing") is None
        True
    """
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    found: type = getattr(loaded, name)
    return found


def render(module: str, name: str) -> str:
    """The reference of one class, or a note that it is not available in this build.

    Example:
        >>> render("fullon_cache.no_such_module", "Nothing")
        '## Nothing\\n\\nNot available in this build (fullon_cache.no_such_module).\\n'
    """
    cls = load_class(module, name)
    if cls is None:
        return f"## {name}\n\nNot available in this build ({module}).\n"
    return describe_class(cls)


def _group(title: str, module: str, names: tuple[str, ...]) -> str:
    return f"# {title}\n\n" + "\n".join(render(module, name) for name in names)


BASE_CACHE = render(*CACHES["BASE_CACHE"])
PROCESS_CACHE = render(*CACHES["PROCESS_CACHE"])
EXCHANGE_CACHE = render(*CACHES["EXCHANGE_CACHE"])
SYMBOL_CACHE = render(*CACHES["SYMBOL_CACHE"])
TICK_CACHE = render(*CACHES["TICK_CACHE"])
ACCOUNT_CACHE = render(*CACHES["ACCOUNT_CACHE"])
ORDERS_CACHE = render(*CACHES["ORDERS_CACHE"])
TRADES_CACHE = render(*CACHES["TRADES_CACHE"])
BOT_CACHE = render(*CACHES["BOT_CACHE"])
OHLCV_CACHE = render(*CACHES["OHLCV_CACHE"])
ASYNC_CACHE = render(*CACHES["ASYNC_CACHE"])
REDIS_CACHE = render(*CACHES["REDIS_CACHE"])
CACHE_MANAGER = render(*CACHES["CACHE_MANAGER"])
MODELS = _group("Models", "fullon_cache.models", _MODELS)
ERRORS = _group("Errors", "fullon_cache.exceptions", _ERRORS)

API_REFERENCE = "\n".join(
    [
        "# fullon_cache API reference (generated from the code)",
        "",
        *(globals()[constant] for constant in CACHES),
        MODELS,
        ERRORS,
    ]
)
