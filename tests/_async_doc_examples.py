"""Run the ``Example:`` blocks of a module's docstrings, with top-level ``await``.

Used by test_async_cache.py and test_redis_cache.py: each docstring is one
:class:`doctest.DocTest`; its examples run in order in one namespace, awaiting what
they await, and their printed output (or exception) is compared like doctest does.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import io
import sys
import traceback
import types
from typing import Any

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def doc_tests(module: types.ModuleType) -> list[doctest.DocTest]:
    """The docstrings of ``module`` that hold examples, sorted by name."""
    found = doctest.DocTestFinder(exclude_empty=True).find(module)
    return sorted((t for t in found if t.examples), key=lambda t: t.name)


async def run_doc_test(test: doctest.DocTest, globs: dict[str, Any]) -> None:
    """Run every example of ``test``; raise AssertionError on the first mismatch."""
    checker = doctest.OutputChecker()
    for example in test.examples:
        code = compile(example.source, test.name, "single", flags=_FLAGS)
        out = io.StringIO()
        got_exc: str | None = None
        with contextlib.redirect_stdout(out):
            saved = sys.displayhook
            sys.displayhook = sys.__displayhook__
            try:
                result = eval(code, globs)
                if isinstance(result, types.CoroutineType):
                    await result
            except Exception as exc:
                got_exc = traceback.format_exception_only(type(exc), exc)[-1]
            finally:
                sys.displayhook = saved
        where = f"{test.name}: {example.source.strip()}"
        if example.exc_msg is not None:
            assert got_exc is not None, f"{where}: expected {example.exc_msg!r}, no exception"
            assert checker.check_output(example.exc_msg, got_exc, _OPTIONS), (
                f"{where}: expected {example.exc_msg!r}, got {got_exc!r}"
            )
            continue
        assert got_exc is None, f"{where}: raised {got_exc}"
        assert checker.check_output(example.want, out.getvalue(), _OPTIONS), (
            f"{where}: expected {example.want!r}, got {out.getvalue()!r}"
        )
