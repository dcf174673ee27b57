"""The documentation package: every guide is present, its ```python blocks run against
the test server, every ``Class.method(...)`` it names exists with that signature, and
the API reference is generated from the code."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import pytest

import fullon_cache
from fullon_cache import docs
from fullon_cache.config import Settings
from fullon_cache.docs import api_reference, runner
from fullon_cache.docs.runner import parse_examples, python_blocks, run_block, run_examples

GUIDES = ("quickstart", "caching_guide", "testing_guide", "migration")

_MENTION = re.compile(
    r"\b([A-Z][A-Za-z]*(?:Cache|Manager|Pool))\.([a-z_][a-z0-9_]*)(\(([^()]*)\))?"
)


def _guide(name: str) -> str:
    text: str = importlib.import_module(f"fullon_cache.docs.{name}").GUIDE
    return text


def _blocks() -> list[Any]:
    return [
        pytest.param(name, index, block, id=f"{name}[{index}]")
        for name in GUIDES
        for index, block in enumerate(python_blocks(_guide(name)))
    ]


def _classes() -> dict[str, type]:
    found: dict[str, type] = {}
    for module, name in api_reference.CACHES.values():
        cls = api_reference.load_class(module, name)
        if cls is not None:
            found[name] = cls
    for name in fullon_cache.__all__:
        value = getattr(fullon_cache, name)
        if inspect.isclass(value):
            found[name] = value
    return found


def _mentions() -> list[Any]:
    params = []
    for name in GUIDES:
        for match in _MENTION.finditer(_guide(name)):
            cls, method, call, args = match.groups()
            where = f"{name}:{cls}.{method}"
            params.append(pytest.param(cls, method, args if call else None, id=where))
    return params


def test_get_all_docs() -> None:
    everything = docs.get_all_docs()
    assert set(everything) == {*GUIDES, "api_reference"}
    assert all(text.strip() for text in everything.values())
    assert everything["quickstart"] is docs.QUICK_START
    assert everything["api_reference"] is api_reference.API_REFERENCE


@pytest.mark.parametrize(("guide", "index", "block"), _blocks())
async def test_guide_block_runs(standalone: Settings, guide: str, index: int, block: str) -> None:
    """Each ```python block is a whole program that runs without raising."""
    await run_block(block)


def _parameter_text(parameter: inspect.Parameter) -> str:
    if parameter.default is inspect.Parameter.empty:
        return parameter.name
    return f"{parameter.name}={parameter.default!r}"


@pytest.mark.parametrize(("cls_name", "method", "args"), _mentions())
def test_mentioned_method_exists_with_signature(
    cls_name: str, method: str, args: str | None
) -> None:
    """``Class.method`` named in a guide exists; written as ``Class.method(a, b=1)`` its
    parameters (names and defaults, ``self`` left out; ``b=...`` for "has a default")
    are exactly the real ones."""
    cls = _classes().get(cls_name)
    assert cls is not None, f"{cls_name} is not a class of fullon_cache"
    assert hasattr(cls, method), f"{cls_name}.{method} does not exist"
    if args is None:
        return
    function = inspect.getattr_static(cls, method)
    if isinstance(function, (classmethod, staticmethod)):
        function = function.__func__
    real = [
        _parameter_text(parameter)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.name not in ("self", "cls")
    ]
    documented = [part.strip() for part in args.split(",") if part.strip()]
    # ``name=...`` documents that a parameter has a default without spelling it
    real = [
        f"{text.split('=', 1)[0]}=..." if doc.endswith("=...") and "=" in text else text
        for doc, text in zip(documented, real, strict=False)
    ] + real[len(documented) :]
    assert documented == real, f"{cls_name}.{method}: documented {documented}, real {real}"


def test_api_reference_is_generated_from_the_code() -> None:
    """Every public method of every cache in this build appears with its signature."""
    for constant, (module, name) in api_reference.CACHES.items():
        text = getattr(api_reference, constant)
        cls = api_reference.load_class(module, name)
        if cls is None:
            assert "Not available in this build" in text
            continue
        for member, _value in api_reference.public_members(cls):
            assert f"### {name}.{member}" in text
        assert text in api_reference.API_REFERENCE
    assert "## Tick" in api_reference.MODELS
    assert "## CacheConnectionError" in api_reference.ERRORS


def test_describe_member_kinds() -> None:
    class Sample:
        """A sample."""

        @property
        def value(self) -> int:
            """The value."""
            return 1

        @classmethod
        def build(cls, size: int = 2) -> Sample:
            """Build one."""
            return cls()

        @staticmethod
        def helper() -> None:
            pass

        async def fetch(self, key: str) -> str:
            """Fetch."""
            return key

        async def stream(self) -> Any:
            """Stream."""
            yield 1

        def plain(self) -> None:
            """Plain."""

    text = api_reference.describe_class(Sample)
    assert "### Sample.value  *(property)*\n\nThe value." in text
    assert "### Sample.build(size: int = 2) -> Sample  *(classmethod)*" in text
    assert "### Sample.helper() -> None  *(staticmethod)*\n\n(no docstring)" in text
    assert "### Sample.fetch(key: str) -> str  *(async)*" in text
    assert "### Sample.stream() -> Any  *(async generator)*" in text
    assert "### Sample.plain() -> None  *(method)*" in text
    assert "Bases:" not in text


async def test_runner_reports_mismatches_and_exceptions() -> None:
    doc = """
    >>> 1 + 1
    3
    >>> raise ValueError("bad")
    Traceback (most recent call last):
    ValueError: bad
    >>> raise KeyError("x")
    Traceback (most recent call last):
    ValueError: x
    >>> raise TypeError("detail") # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    builtins.TypeError: other detail
    >>> 2
    Traceback (most recent call last):
    ValueError: never
    >>> undefined_name
    >>> print("skipped") # doctest: +SKIP
    nothing
    >>> print("a   b") # doctest: +NORMALIZE_WHITESPACE
    a b
    >>> print("long text") # doctest: -ELLIPSIS
    long ...
    """
    failures = await run_examples(parse_examples(doc), {})
    assert [failure.lineno for failure in failures] == [0, 5, 11, 14, 19]
    assert failures[0].got == "2\n"
    assert failures[1].got == "KeyError: 'x'\n"
    assert failures[2].got == "2\n"
    assert failures[3].got == (
        "Traceback (most recent call last):\nNameError: name 'undefined_name' is not defined\n"
    )
    assert "expected:\n    (nothing)" in str(failures[3])
    assert "got:\n    (nothing)" in str(
        runner.Failure(source="x\n", expected="1\n", got="", lineno=0)
    )


async def test_runner_runs_own_event_loops_in_a_thread() -> None:
    """A statement calling asyncio.run works inside the runner (a worker thread), and
    top-level await shares the runner's loop."""
    doc = """
    >>> import asyncio
    >>> async def answer() -> int:
    ...     return 42
    >>> asyncio.run(answer())
    42
    >>> await answer()
    42
    """
    assert await run_examples(parse_examples(doc), {}) == []
    printed = await run_block("import asyncio\nasync def f():\n    print('hi')\nasyncio.run(f())\n")
    assert printed == "hi\n"
    with pytest.raises(ZeroDivisionError):
        await run_block("1 / 0")
    scope: dict[str, Any] = {}
    await run_block("x = 1", scope)
    assert scope["x"] == 1


def test_unannotated_signature() -> None:
    def legacy(self, a, b=2):  # type: ignore[no-untyped-def]
        return a

    assert api_reference.format_signature(legacy) == "(a, b=2)"
