"""Whether a CSV needs quotes is read from the bytes of its text cells: the same answer as
a regular expression over the cells, for any text, nulls and slices of an Arrow array."""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from netgis.engine.outputs import needs_quotes

CELLS = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list('ab ,"\r\nüé日\x00')),
                                     max_size=6), st.text(max_size=4))


@given(st.lists(CELLS, max_size=8), st.integers(0, 8), st.integers(0, 8))
def test_needs_quotes_is_any_cell_with_a_structural_character(
        cells: list[str | None], start: int, length: int) -> None:
    column = pa.array(cells, type=pa.string()).slice(min(start, len(cells)), length)
    want = any(v is not None and re.search(r'[,"\r\n]', v) is not None
               for v in column.to_pylist())
    assert needs_quotes(pa.table({"text": column, "n": pa.array(range(len(column)))})) == want
