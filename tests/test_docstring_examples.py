"""Every docstring example of the library runs, so the documentation cannot drift.

* Cache classes (``BaseCache`` and every class of a ``*_cache`` module that subclasses
  it or is named ``...Cache``/``CacheManager``): the ``Example:`` block of the class and
  of each public method or property it defines runs under the CONTRIBUTING convention —
  ``cache`` is a fresh instance of that class on an empty namespace of the test server,
  top-level ``await`` works, every name exported by ``fullon_cache`` is in scope (on top
  of the module's own globals, as doctest gives), and the output is compared like doctest
  (``ELLIPSIS`` on). Other docstrings of a ``*_cache`` module (the module itself, helper
  classes) run the same way, with ``cache`` an instance of the module's cache class.
  One test per docstring, named ``Class.member``, on the standalone server and on the
  cluster. A constructor with required
  arguments gets ``"doc-<param>"`` strings (``AsyncCache("doc-strategy_id", ...)``).
* Every other docstring of the package (pure functions such as ``keys.escape``, models,
  settings, the embedded server) runs with the standard :mod:`doctest` runner in its
  module's globals. One test per docstring.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import fullon_cache
from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.docs.api_reference import public_members
from fullon_cache.docs.runner import parse_examples, run_examples

_CONVENTION_NAMES = ("CacheManager",)


IMPORT_ERRORS: dict[str, str] = {}


def _modules() -> Iterator[ModuleType]:
    """Every module of the package; one that cannot be imported is recorded (and fails
    ``test_module_imports``) instead of hiding every other module's examples."""
    yield fullon_cache
    for info in pkgutil.walk_packages(fullon_cache.__path__, "fullon_cache."):
        if info.name.rsplit(".", 1)[-1].startswith("_") and not info.ispkg:
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError as exc:
            IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"


MODULES = list(_modules())


def _is_cache_class(cls: type) -> bool:
    return (
        (isinstance(cls, type) and issubclass(cls, BaseCache))
        or cls.__name__.endswith("Cache")
        or cls.__name__ in _CONVENTION_NAMES
    )


def _cache_classes() -> list[type]:
    found: dict[str, type] = {}
    for module in MODULES:
        name = module.__name__.rsplit(".", 1)[-1]
        if not (name.endswith("_cache") or name == "manager"):
            continue
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and not value.__name__.startswith("_")
                and _is_cache_class(value)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


CACHE_CLASSES = _cache_classes()


def _doc_of(member: Any) -> str | None:
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    return inspect.getdoc(member)


def _cache_modules() -> list[ModuleType]:
    return [m for m in MODULES[1:] if m.__name__.endswith("_cache")]


def _public_classes(module: ModuleType) -> list[type]:
    return [
        value
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__ and name[0] != "_"
    ]


def _targets() -> list[Any]:
    """(class giving ``cache``, where, docstring) for every docstring of a cache module:
    the module, each public class and each public member. Outside the cache classes
    themselves, ``cache`` is an instance of the module's first cache class."""
    targets = []
    for module in _cache_modules():
        classes = _public_classes(module)
        owners = [cls for cls in classes if cls in CACHE_CLASSES] or [BaseCache]
        short = module.__name__.rsplit(".", 1)[-1]
        targets.append(pytest.param(module, owners[0], short, module.__doc__, id=short))
        for cls in classes:
            owner = cls if cls in CACHE_CLASSES else owners[0]
            targets.append(
                pytest.param(module, owner, cls.__name__, inspect.getdoc(cls), id=cls.__name__)
            )
            for name, member in public_members(cls):
                where = f"{cls.__name__}.{name}"
                targets.append(pytest.param(module, owner, where, _doc_of(member), id=where))
    return targets


TARGETS = _targets()
MEMBER_TARGETS = [t for t in TARGETS if "." in t.id and t.values[1].__name__ == t.id.split(".")[0]]


def _exports() -> dict[str, Any]:
    return {name: getattr(fullon_cache, name) for name in fullon_cache.__all__}


def _instance(cls: type) -> Any:
    """A fresh instance; a constructor that requires arguments gets ``"doc-<param>"``
    for each (``AsyncCache("doc-strategy_id", "doc-user_id")``)."""
    required = [
        f"doc-{parameter.name}"
        for parameter in inspect.signature(cls).parameters.values()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    return cls(*required)


@pytest.mark.parametrize(("module", "cls", "name", "doc"), TARGETS)
async def test_cache_example_runs(
    settings: Settings, module: ModuleType, cls: type, name: str, doc: str | None
) -> None:
    """The examples of one docstring of a cache module produce exactly their documented
    output (``name`` says where: module, class or ``Class.member``)."""
    examples = parse_examples(doc)
    cache = _instance(cls)
    globs = {**vars(module), **_exports(), "cache": cache}
    try:
        failures = await run_examples(examples, globs, filename=f"<{name}>")
    finally:
        close = getattr(cache, "close", None)
        if close is not None:
            await close()
    assert not failures, "\n\n".join(str(failure) for failure in failures)


def _runnable(example: doctest.Example) -> bool:
    return any(
        line.strip() and not line.strip().startswith("#") for line in example.source.splitlines()
    )


@pytest.mark.parametrize(("module", "cls", "name", "doc"), MEMBER_TARGETS)
def test_cache_member_has_example(
    module: ModuleType, cls: type, name: str, doc: str | None
) -> None:
    """CONTRIBUTING: every public class and method documents an ``Example:`` that runs
    (a commented-out call does not count)."""
    assert doc, f"{name} has no docstring"
    examples = [example for example in parse_examples(doc) if _runnable(example)]
    assert examples, f"{name}: no runnable >>> example in its docstring"


def _plain_doctests() -> list[Any]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    cache_modules = _cache_modules()
    params = []
    for module in MODULES:
        if module in cache_modules:
            continue
        for test in finder.find(module, module.__name__):
            if not test.examples:
                continue
            params.append(pytest.param(test, id=test.name))
    return params


@pytest.mark.parametrize("test", _plain_doctests())
def test_plain_doctest(standalone: Settings, test: doctest.DocTest) -> None:
    """Docstrings outside the cache modules (pure functions, models, settings, the
    embedded server) pass under the standard doctest runner, in their module's globals."""
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    test.globs = dict(test.globs)
    result = runner.run(test, out=out.write)
    assert result.failed == 0, out.getvalue()


@pytest.mark.parametrize(
    "name", [m.__name__ for m in MODULES] + sorted(IMPORT_ERRORS), ids=lambda name: name
)
def test_module_imports(name: str) -> None:
    """Every module of the package imports (so its docstrings are checked above)."""
    assert name not in IMPORT_ERRORS, IMPORT_ERRORS.get(name)


def test_every_cache_class_is_found() -> None:
    """The discovery above sees the base class and the caches that are in this build."""
    names = {cls.__name__ for cls in CACHE_CLASSES}
    assert "BaseCache" in names
    for module in MODULES[1:]:
        if module.__name__.endswith("_cache"):
            assert any(cls.__module__ == module.__name__ for cls in CACHE_CLASSES), module
