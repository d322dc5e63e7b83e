"""Print the per-chapter execution-time table after `make book`.

Reads myst-nb's jupyter-cache (``_build/.jupyter_cache``): one record per executed
notebook with its execution time.  Writes the same table as JSON to
``_build/exec_times.json`` for the tests.  Usage: exec_report.py BUILD_DIR [START_EPOCH]
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from jupyter_cache import get_cache

BUDGET_SECONDS = 40.0


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "_build")
    start = float(sys.argv[2]) if len(sys.argv) > 2 else None
    cache = get_cache(str(build / ".jupyter_cache"))
    rows = []
    for record in cache.list_cache_records():
        seconds = float(record.data.get("execution_seconds", float("nan")))
        created = record.created.replace(tzinfo=timezone.utc).timestamp()
        rows.append({
            "notebook": Path(record.uri).name,
            "seconds": round(seconds, 2),
            "executed_this_build": start is None or created >= start - 1,
        })
    rows.sort(key=lambda r: r["notebook"])
    (build / "exec_times.json").write_text(json.dumps(rows, indent=1))
    width = max([len(r["notebook"]) for r in rows] + [8])
    print(f"\nPer-chapter execution time (budget {BUDGET_SECONDS:.0f} s each on a 2-core CPU)")
    print(f"{'notebook':<{width}}  {'seconds':>8}  this build")
    for r in rows:
        flag = "executed" if r["executed_this_build"] else "cached"
        over = "  OVER BUDGET" if r["seconds"] > BUDGET_SECONDS else ""
        print(f"{r['notebook']:<{width}}  {r['seconds']:>8.1f}  {flag}{over}")
    total = sum(r["seconds"] for r in rows if r["executed_this_build"])
    print(f"{'executed in this build':<{width}}  {total:>8.1f}  ({datetime.now():%Y-%m-%d %H:%M})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
