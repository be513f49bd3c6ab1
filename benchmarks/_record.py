"""Write one benchmark's figures into its own section of benchmarks/RESULTS.md."""

from __future__ import annotations

import re
import resource
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def record(section: str, markdown: str) -> None:
    """Replace (or append) the section ``section`` of RESULTS.md with ``markdown``."""
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    print(markdown)


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its finished children), in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0
