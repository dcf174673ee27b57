"""Run the library's documentation against a live server, so it cannot drift.

Two kinds of documentation code are run:

* **docstring examples** (``>>>`` lines, parsed with :class:`doctest.DocTestParser`):
  each example is compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``, so ``await`` may be
  used at top level; its printed output (and the repr of a bare expression) is compared
  with the expected output exactly like :mod:`doctest` does (``+ELLIPSIS``,
  ``+NORMALIZE_WHITESPACE``, ``+SKIP``, ``+IGNORE_EXCEPTION_DETAIL`` and expected
  tracebacks work);
* **guide code blocks** (fenced ```` ```python ```` blocks of the guides in
  :mod:`fullon_cache.docs`): each block is a self-contained program, run with fresh
  globals; it may use top-level ``await`` (as in ``python -m asyncio``) or
  ``asyncio.run(main())``. It passes when it does not raise.

A statement that starts its own event loop (``asyncio.run(...)``) is run in a worker
thread, because the runner itself runs inside a loop; every other statement runs in the
runner's loop, so code that needs the running loop works.

Only the library's own documentation is evaluated here, never data read from Redis.

Example:
    >>> import asyncio
    >>> examples = parse_examples('''
    ...     >>> x = 20
    ...     >>> await asyncio.sleep(0, result=x + 1)
    ...     21
    ... ''')
    >>> asyncio.run(run_examples(examples, {"asyncio": asyncio}))
    []
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import doctest
import inspect
import io
import re
import sys
import traceback
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["Failure", "parse_examples", "python_blocks", "run_block", "run_examples"]

_PARSER = doctest.DocTestParser()
_CHECKER = doctest.OutputChecker()
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_OWN_LOOP = re.compile(r"\basyncio\.run\(")
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Failure:
    """One example whose output (or exception) differs from the documented one.

    Example:
        >>> print(Failure(source="1 + 1\\n", expected="3\\n", got="2\\n", lineno=4))
        line 5: >>> 1 + 1
        expected:
            3
        got:
            2
    """

    source: str
    expected: str
    got: str
    lineno: int

    def __str__(self) -> str:
        source = self.source.rstrip("\n").replace("\n", "\n... ")
        expected = _indent(self.expected) or "    (nothing)"
        got = _indent(self.got) or "    (nothing)"
        return f"line {self.lineno + 1}: >>> {source}\nexpected:\n{expected}\ngot:\n{got}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


def parse_examples(docstring: str | None) -> list[doctest.Example]:
    """The ``>>>`` examples of a docstring (none for None).

    Example:
        >>> [e.source for e in parse_examples(">>> 1 + 1\\n2\\n")]
        ['1 + 1\\n']
        >>> parse_examples(None)
        []
    """
    if not docstring:
        return []
    return _PARSER.get_examples(inspect.cleandoc(docstring))


def python_blocks(text: str) -> list[str]:
    """The fenced ```` ```python ```` blocks of a Markdown text, in order.

    Example:
        >>> python_blocks("intro\\n```python\\nprint(1)\\n```\\n```bash\\nls\\n```\\n")
        ['print(1)\\n']
    """
    return [match.group(1) for match in _BLOCK.finditer(text)]


def _flags(example: doctest.Example, base: int) -> int:
    flags = base
    for flag, enabled in example.options.items():
        flags = flags | flag if enabled else flags & ~flag
    return flags


async def _execute(code: types.CodeType, source: str, globs: dict[str, Any]) -> None:
    if code.co_flags & inspect.CO_COROUTINE:
        await types.FunctionType(code, globs)()
    elif _OWN_LOOP.search(source):
        await asyncio.to_thread(eval, code, globs)
    else:
        eval(code, globs)


def _exception_line(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1]


def _exception_matches(want: str, got: str, flags: int) -> bool:
    if _CHECKER.check_output(want, got, flags):
        return True
    if flags & doctest.IGNORE_EXCEPTION_DETAIL:
        return want.split(":")[0].rsplit(".", 1)[-1] == got.split(":")[0].rsplit(".", 1)[-1]
    return False


async def run_examples(
    examples: Sequence[doctest.Example],
    globs: dict[str, Any],
    *,
    filename: str = "<example>",
    optionflags: int = doctest.ELLIPSIS,
) -> list[Failure]:
    """Run ``examples`` in order in ``globs`` (top-level ``await`` allowed) and return the
    ones whose output or exception differs from the documented one (empty: all passed).

    ``optionflags`` are doctest's (default ``ELLIPSIS``); an example's own
    ``# doctest: +FLAG`` directives apply on top.

    Example:
        >>> import asyncio
        >>> failures = asyncio.run(run_examples(parse_examples(">>> 6 * 7\\n41\\n"), {}))
        >>> [f.got for f in failures]
        ['42\\n']
    """
    failures: list[Failure] = []
    for example in examples:
        flags = _flags(example, optionflags)
        if flags & doctest.SKIP:
            continue
        buffer = io.StringIO()
        error: Exception | None = None
        saved_hook = sys.displayhook
        sys.displayhook = sys.__displayhook__
        with contextlib.redirect_stdout(buffer):
            try:
                code = compile(example.source, filename, "single", _FLAGS, dont_inherit=True)
                await _execute(code, example.source, globs)
            except Exception as exc:
                error = exc
            finally:
                sys.displayhook = saved_hook
        got = buffer.getvalue()
        if error is None:
            if example.exc_msg is None and _CHECKER.check_output(example.want, got, flags):
                continue
        elif example.exc_msg is not None:
            if _exception_matches(example.exc_msg, _exception_line(error), flags):
                continue
            got += _exception_line(error)
        else:
            got += "Traceback (most recent call last):\n" + _exception_line(error)
        failures.append(Failure(example.source, example.want, got, example.lineno))
    return failures


async def run_block(source: str, globs: dict[str, Any] | None = None) -> str:
    """Run one guide code block (a whole program; top-level ``await`` or
    ``asyncio.run(main())``) and return what it printed. Exceptions propagate.

    Example:
        >>> import asyncio
        >>> asyncio.run(run_block("import asyncio\\nprint(await asyncio.sleep(0, 'ok'))"))
        'ok\\n'
    """
    scope: dict[str, Any] = {"__name__": "__main__"} if globs is None else globs
    code = compile(source, "<guide>", "exec", _FLAGS, dont_inherit=True)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        await _execute(code, source, scope)
    return buffer.getvalue()
