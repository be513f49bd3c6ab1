"""Write the bad-input corpus to a directory, for a look or for other tools.

Usage::

    python -m tests.corpus.build DIR

``DIR/files/<layer>/<case>/`` holds each dataset on disk, ``DIR/items/<layer>/<case>.json``
each feature body (as a careless client sends it: NaN tokens and ``\\ud800``
escapes included), and ``DIR/manifest.json`` what each case breaks and what a
clear error must name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from tests.corpus.cases import FILE_CASES, GOOD, GOOD_GEOMETRY, ITEM_CASES, TOLERATED_CASES


def build(out: Path) -> dict[str, int]:
    """Write every case under ``out``; the number written per family."""
    manifest: list[dict[str, object]] = []
    for family, cases in (("files", FILE_CASES), ("tolerated", TOLERATED_CASES)):
        for case in cases:
            root = out / family / case.name
            root.mkdir(parents=True, exist_ok=False)
            path = case.write(root)
            manifest.append({"family": family, "name": case.name, "kind": case.kind,
                             "path": str(path.relative_to(out)), "expect": asdict(case.expect)})
    for item in ITEM_CASES:
        body = {"type": "Feature", "geometry": item.geometry or GOOD_GEOMETRY[item.layer],
                "properties": {**GOOD[item.layer], **item.props}}
        target = out / "items" / f"{item.name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(body, indent=1), encoding="ascii")
        manifest.append({"family": "items", "name": item.name, "kind": item.kind,
                         "path": str(target.relative_to(out)), "expect": asdict(item.expect)})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return {"files": len(FILE_CASES), "tolerated": len(TOLERATED_CASES),
            "items": len(ITEM_CASES)}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(build(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
