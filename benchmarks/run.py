"""Run every benchmark module (``benchmarks/bench_*.py``), each in its own process.

Each module has a ``main()`` that measures, prints its figures and records them
in RESULTS.md. ``python -m benchmarks.run generate analyze`` runs a subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    chosen = [n for n in names if not argv or n in argv]
    failed = []
    for name in chosen:
        print(f"== benchmark {name}", flush=True)
        # a fresh process per benchmark so that peak RSS figures do not mix
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"])
        if rc:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
