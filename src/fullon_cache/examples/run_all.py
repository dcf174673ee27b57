"""Run every example, report each as ok or failed, exit non-zero when one failed.

Run: ``python -m fullon_cache.examples.run_all``.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from fullon_cache.config import Settings
from fullon_cache.examples import EXAMPLES, run


async def run_all(settings: Settings | None = None) -> dict[str, bool]:
    """Run each example's ``main(settings)`` in turn; one failing does not stop the
    others. Returns ``{name: passed}``.
    """
    results: dict[str, bool] = {}
    for name in EXAMPLES:
        print(f"\n=== {name} ===")
        try:
            module = importlib.import_module(f"fullon_cache.examples.{name}")
            await module.main(settings)
        except Exception:
            traceback.print_exc(file=sys.stdout)
            results[name] = False
        else:
            results[name] = True
        print(f"--- {name}: {'ok' if results[name] else 'FAILED'}")
    return results


def main() -> int:
    """Run every example; 0 when all passed, 1 otherwise."""
    results: dict[str, bool] = run(run_all)
    failed = [name for name, passed in results.items() if not passed]
    print(
        f"\n{len(results) - len(failed)}/{len(results)} examples ok"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
