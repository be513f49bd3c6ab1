"""Address search: find premises by address, premise_id or location_id.

:func:`build_index` turns a premises frame into an :class:`AddressIndex` once
(per data version, in the API); :meth:`AddressIndex.search` answers a query in
about a millisecond at a million premises, because fuzzy matching runs over the
*street vocabulary* (the distinct normalised street names, a few thousand at
most), not over premises; street + house number then lead to premise rows by a
binary search in one sorted key array.

Normalisation (:func:`fold`): Unicode case folding ("STRASSE" and "Straße" are
both "strasse"), accents dropped (NFKD without combining marks), "str." read as
"strasse", punctuation and spaces ignored (a street's key is its letters and
digits run together, so "Linden strasse" is "Lindenstraße"). A house number is a
run of digits with at most one letter ("12", "12a") at the start or the end of
the text; both readings are tried.

Ranking: an exact premise_id or location_id (case folded) comes first; then
addresses by street similarity (rapidfuzz: optimal string alignment distance,
so a transposition is one typo, over the longer key; a street that *begins*
with the query counts too, for type-ahead, at 0.9 of its similarity), plus a
bonus when the house number exists exactly on that street; a number that the
street lacks matches the numbers it begins ("Lindenstraße 1" finds 12, 14...).
Each address hit says whether its house number is the one asked for; when the
best hit's is not (or nothing matched the street's numbers), the result names
the street, the number and the street's numbers on either side of it
(:class:`NumberNotFound`): "Lindenstraße 12" must not be answered as if it were
"Lindenstraße 126".
Streets below :data:`MIN_SIMILARITY` do not match; when nothing matches, the
nearest street spellings are the suggestions.

Examples
--------
>>> import pandas as pd
>>> premises = pd.DataFrame({"premise_id": ["p1", "p2", "p3"],
...                          "address": ["Lindenstraße 12", "Lindenstraße 14", "Talweg 3"],
...                          "location_id": ["9001", None, "9003"]})
>>> index = build_index(premises)
>>> index.search("12 LINDENSTRASE").positions.tolist(), index.search("lindenstr. 1").match
([0], ['address', 'address'])
>>> index.search("9003").match
['location_id']
>>> index.search("Zzzweg 3").suggestions[:1]
['Talweg 3']
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from pyproj import CRS
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler

from netgis.jsonsafe import json_safe
from netgis.schema import DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT

IntArray = npt.NDArray[np.int64]

#: Longest query accepted, in characters.
MAX_QUERY_LENGTH = 200
#: Street similarity (0..1) below which a street does not match.
MIN_SIMILARITY = 0.6
#: Weight of a match on the beginning of a street name (type-ahead) against a whole one.
PREFIX_WEIGHT = 0.9
#: Score added when the house number exists exactly on the street.
EXACT_NUMBER_BONUS = 0.15
#: Streets considered per reading of the query.
CANDIDATE_STREETS = 12
#: Suggestions given when nothing matches.
SUGGESTIONS = 5

_TOKEN = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+[^\W\d_]?")
_STR_ABBREVIATION = re.compile(r"str\.")


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def fold_id(text: str) -> str:
    """An id as it is compared: case folded, without accents (ASCII takes the quick way).

    Examples
    --------
    >>> fold_id("P-0012"), fold_id("Ärger")
    ('p-0012', 'arger')
    """
    if text.isascii():
        return text.lower()
    return _strip_marks(_strip_marks(text).casefold())


def fold(text: str) -> str:
    """``text`` case folded, without accents, "str." spelled out.

    Examples
    --------
    >>> fold("Mühlen-STRASSE"), fold("Mühlenstraße"), fold("Kirchstr. 4")
    ('muhlen-strasse', 'muhlenstrasse', 'kirchstrasse 4')
    """
    return _STR_ABBREVIATION.sub("strasse", fold_id(text))


def tokens(text: str) -> list[str]:
    """The letter/digit runs of ``fold(text)``: punctuation and spaces separate them.

    Examples
    --------
    >>> tokens("  Obere Linden-Straße, 12a ")
    ['obere', 'linden', 'strasse', '12a']
    """
    return _TOKEN.findall(fold(text))


def street_key(text: str) -> str:
    """The key a street name is matched by: its folded letters and digits run together.

    Examples
    --------
    >>> street_key("Linden Straße") == street_key("LINDENSTRASSE") == "lindenstrasse"
    True
    """
    return "".join(tokens(text))


def split_address(address: str) -> tuple[str, str]:
    """A stored address as (street part, house number): the number at its start or end.

    Examples
    --------
    >>> split_address("Fliederweg 695"), split_address("12, Main St"), split_address("Weiler 3a.")
    (('Fliederweg', '695'), ('Main St', '12'), ('Weiler', '3a'))
    >>> split_address("Am Markt")
    ('Am Markt', '')
    """
    text = address.strip().rstrip(".,; ")
    first = text.split(None, 1)
    if len(first) == 2 and _NUMBER.fullmatch(first[0].rstrip(",;")):
        return first[1].lstrip(",; "), first[0].rstrip(",;").casefold()
    last = text.rsplit(None, 1)
    if len(last) == 2 and _NUMBER.fullmatch(last[1]):
        return last[0].rstrip(",; "), last[1].casefold()
    return text, ""


def _natural(numbers: list[str]) -> list[str]:
    """House numbers in natural order ("" first, then 2 < 10 < 10a)."""
    def key(n: str) -> tuple[int, int, str]:
        digits = re.match(r"\d+", n)
        return (0, 0, n) if digits is None else (1, int(digits.group()), n)

    return sorted(numbers, key=key)


@dataclass(frozen=True)
class NumberNotFound:
    """A house number asked for that the street the query names best does not have.

    ``nearest`` holds the street's numbers next below and next above it (in house
    order; one when the number lies beyond the street's ends, none when the street
    has no numbers) and ``positions`` one premise row with each of them.
    """

    street: str
    number: str
    nearest: list[str]
    positions: IntArray


@dataclass(frozen=True)
class SearchResult:
    """What one search found: positions in the indexed frame, best first.

    ``match`` says per hit what matched (``premise_id``, ``location_id`` or
    ``address``) and ``score`` how well (2 for an exact id; an address's street
    similarity 0..1 plus :data:`EXACT_NUMBER_BONUS` for an exact house number).
    ``number_match`` says per hit whether its house number is the one asked for
    (None: no number was asked for, or an id matched). ``suggestions`` holds the
    nearest spellings when nothing matched; ``number_not_found`` is set when the
    best hit lacks the number asked for, or nothing on the best street had it.
    """

    positions: IntArray
    match: list[str]
    score: list[float]
    suggestions: list[str] = field(default_factory=list)
    number_match: list[bool | None] = field(default_factory=list)
    number_not_found: NumberNotFound | None = None


class _Hit(NamedTuple):
    """One hit while ranking: ordered by score, then tie-break, then ``order``."""

    score: float
    tie: float
    order: int
    kind: str
    #: the reading's house number, None when it had none (or an id matched)
    number: str | None = None
    #: whether the row has that number exactly (None without a number)
    number_match: bool | None = None
    street: int = -1


@dataclass(frozen=True)
class _Reading:
    """One way to read a query: a street key and maybe a house number."""

    key: str
    number: str | None


@dataclass
class AddressIndex:
    """Premises by id and by (street, house number); see :func:`build_index`."""

    size: int
    #: folded premise_id / location_id of each row, sorted, and the rows in that order
    id_keys: dict[str, tuple[list[str], IntArray]]
    #: raw ids per row, to put an exact-case id first
    raw_ids: dict[str, npt.NDArray[np.object_]]
    street_keys: list[str]
    street_names: list[str]
    #: the house numbers, sorted lexicographically; ``row_number`` points into it (-1: none)
    numbers: npt.NDArray[np.str_]
    #: rows with an address, sorted by (street, house number in natural order, row)
    order: IntArray
    #: each street's slice of ``order``
    street_start: IntArray
    street_end: IntArray
    row_number: IntArray
    _prefixes: dict[int, list[str]] = field(default_factory=dict)

    # ---------------------------------------------------------------- lookups

    def _ids(self, text: str) -> tuple[list[int], list[str]]:
        folded = fold_id(text.strip())
        found: dict[int, tuple[int, str]] = {}
        for kind, (keys, rows) in self.id_keys.items():
            lo, hi = bisect_left(keys, folded), bisect_right(keys, folded)
            for row in rows[lo:hi].tolist():
                exact = self.raw_ids[kind][row] == text.strip()
                rank = 0 if exact else 1
                if row not in found or rank < found[row][0]:
                    found[row] = (rank, kind)
        ordered = sorted(found.items(), key=lambda item: (item[1][0], item[0]))
        return [row for row, _ in ordered], [kind for _, (_, kind) in ordered]

    def _prefix_keys(self, length: int) -> list[str]:
        keys = self._prefixes.get(length)
        if keys is None:
            keys = [k[:length] if len(k) > length else "\0" for k in self.street_keys]
            self._prefixes[length] = keys
        return keys

    def similarity(self, key: str) -> npt.NDArray[np.float64]:
        """Similarity 0..1 of ``key`` to every street of the vocabulary."""
        if not key or not self.street_keys:
            return np.zeros(len(self.street_keys))
        full: npt.NDArray[np.float64] = process.cdist(
            [key], self.street_keys, scorer=OSA.normalized_similarity, workers=1)[0].astype(float)
        if len(key) >= 3:
            prefix = process.cdist([key], self._prefix_keys(len(key)),
                                   scorer=OSA.normalized_similarity, workers=1)[0]
            full = np.maximum(full, PREFIX_WEIGHT * prefix.astype(float))
        return full

    def _readings(self, text: str) -> list[_Reading]:
        words = tokens(text)
        out: list[_Reading] = []
        if len(words) >= 2 and _NUMBER.fullmatch(words[-1]):
            out.append(_Reading("".join(words[:-1]), words[-1]))
        if len(words) >= 2 and _NUMBER.fullmatch(words[0]):
            out.append(_Reading("".join(words[1:]), words[0]))
        out.append(_Reading("".join(words), None))
        return out

    def _street_rows(self, street: int) -> IntArray:
        return self.order[self.street_start[street]:self.street_end[street]]

    def _number_codes(self, number: str) -> tuple[int, npt.NDArray[np.bool_]]:
        """The code of ``number`` (-1 if no address has it) and which numbers begin with it."""
        code = int(np.searchsorted(self.numbers, number))
        exact = code if code < len(self.numbers) and self.numbers[code] == number else -1
        lo, hi = np.searchsorted(self.numbers, [number, number + "\U0010ffff"])
        begins = np.zeros(len(self.numbers), dtype=bool)
        begins[lo:hi] = True
        if exact >= 0:
            begins[exact] = False
        return exact, begins

    # ----------------------------------------------------------------- search

    def search(self, text: str, *, limit: int = DEFAULT_SEARCH_LIMIT) -> SearchResult:
        """Premises matching ``text``, best first, at most ``limit`` (up to
        :data:`~netgis.schema.MAX_SEARCH_LIMIT`).

        Examples
        --------
        >>> index = build_index(pd.DataFrame({"premise_id": ["a"], "address": ["Talweg 3"],
        ...                                   "location_id": [None]}))
        >>> index.search("3 talwge").positions.tolist(), index.search("Berg 1").positions.size
        ([0], 0)
        """
        limit = max(1, min(int(limit), MAX_SEARCH_LIMIT))
        id_rows, id_kinds = self._ids(text)
        hits: dict[int, _Hit] = {}
        for rank, (row, kind) in enumerate(zip(id_rows, id_kinds, strict=True)):
            hits[row] = _Hit(2.0, 0.0, rank, kind)
        readings = self._readings(text)
        scored = [(r, self.similarity(r.key)) for r in readings]
        best_numbered = max((float(s.max(initial=0.0)) for r, s in scored
                             if r.number is not None), default=0.0)
        for reading, sim in scored:
            if reading.number is None and float(sim.max(initial=0.0)) <= best_numbered:
                # the text reads better with a house number: "Lindenstraße 999" is not a street
                continue
            self._address_hits(reading, sim, limit, hits)
        ranked = sorted(hits.items(), key=lambda item: (-item[1].score, -item[1].tie,
                                                        item[1].order))[:limit]
        suggestions = [] if ranked else self.suggest(readings, scored)
        return SearchResult(
            positions=np.asarray([row for row, _ in ranked], dtype=np.int64),
            match=[h.kind for _, h in ranked], score=[round(h.score, 4) for _, h in ranked],
            suggestions=suggestions, number_match=[h.number_match for _, h in ranked],
            number_not_found=self._number_not_found(ranked[0][1] if ranked else None, scored))

    def _number_not_found(self, top: _Hit | None,
                          scored: list[tuple[_Reading, npt.NDArray[np.float64]]]
                          ) -> NumberNotFound | None:
        """The number asked for, missing on the best hit's street; with no hit, on the
        street the best numbered reading names (when it names one)."""
        if top is not None:
            if top.number is None or top.number_match:
                return None
            street, number = top.street, top.number
        else:
            numbered = [(float(sim.max(initial=0.0)), r.number, int(np.argmax(sim)))
                        for r, sim in scored if r.number is not None and r.key and len(sim)]
            if not numbered:
                return None
            best, found, street = max(numbered, key=lambda t: t[0])
            if best < MIN_SIMILARITY or found is None:
                return None
            number = found
        rows = self._street_rows(street)
        codes = np.unique(self.row_number[rows])
        on_street = _natural([str(self.numbers[c]) for c in codes.tolist()])
        if number in on_street:
            return None
        at = _natural([*on_street, number]).index(number)
        nearest = [n for n in on_street[max(at - 1, 0):at + 1] if n]
        code_of = {str(self.numbers[c]): c for c in codes.tolist()}
        positions = [int(rows[np.argmax(self.row_number[rows] == code_of[n])])
                     for n in nearest]
        return NumberNotFound(self.street_names[street], number, nearest,
                              np.asarray(positions, dtype=np.int64))

    def _address_hits(self, reading: _Reading, sim: npt.NDArray[np.float64], limit: int,
                      hits: dict[int, _Hit]) -> None:
        if not reading.key:
            return
        codes = None if reading.number is None else self._number_codes(reading.number)
        k = min(CANDIDATE_STREETS, len(sim))
        candidates = np.argpartition(-sim, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        for street in candidates.tolist():
            score = float(sim[street])
            if score < MIN_SIMILARITY:
                continue
            # ties between equally close streets: a typo is likelier late than early
            tie = JaroWinkler.normalized_similarity(reading.key, self.street_keys[street])
            rows = self._street_rows(street)
            groups: list[tuple[IntArray, float, bool | None]]
            if codes is None:
                groups = [(rows[:limit], score, None)]
            else:
                numbers = self.row_number[rows]
                groups = [(rows[numbers == codes[0]][:limit], score + EXACT_NUMBER_BONUS, True),
                          (rows[codes[1][numbers]][:limit], score, False)]
            for rows, value, exact in groups:
                for rank, row in enumerate(rows.tolist()):
                    old = hits.get(row)
                    # within a group rows are in natural house-number order
                    order = street * 1_000_000 + rank
                    if old is None or (value, tie) > (old.score, old.tie):
                        hits[row] = _Hit(value, tie, order, "address", reading.number, exact,
                                         street)

    def suggest(self, readings: list[_Reading],
                scored: list[tuple[_Reading, npt.NDArray[np.float64]]]) -> list[str]:
        """The nearest street spellings (with the closest house number when one was given)."""
        best: dict[int, tuple[float, str | None]] = {}
        for reading, sim in scored:
            if not reading.key:
                continue
            for street in np.argsort(-sim, kind="stable")[:SUGGESTIONS].tolist():
                if sim[street] > best.get(street, (-1.0, None))[0]:
                    best[street] = (float(sim[street]), reading.number)
        out: list[str] = []
        for street, (_, number) in sorted(best.items(), key=lambda s: -s[1][0]):
            text = self.street_names[street]
            nearest = self._nearest_number(street, number) if number else None
            text = f"{text} {nearest}" if nearest else text
            if text not in out:
                out.append(text)
        return out[:SUGGESTIONS]

    def _nearest_number(self, street: int, number: str) -> str | None:
        rows = self._street_rows(street)
        if rows.size == 0:
            return None
        on_street = np.unique(self.row_number[rows])
        values = np.asarray([_leading_int(self.numbers[c]) for c in on_street.tolist()])
        wanted = _leading_int(number)
        if wanted < 0 or (values < 0).all():
            return None
        return str(self.numbers[on_street[int(np.argmin(np.abs(values - wanted)))]])


def _leading_int(number: str) -> int:
    digits = re.match(r"\d+", number)
    return int(digits.group()) if digits else -1


def _sorted_ids(values: pd.Series) -> tuple[list[str], IntArray, npt.NDArray[np.object_]]:
    raw = values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
    present = np.flatnonzero(pd.notna(raw))
    folded = [fold_id(str(v).strip()) for v in raw[present].tolist()]
    # fixed-width strings sort several times faster than objects (stable: ids often come
    # sorted), unless a long id would make every cell of that array long
    longest = max(map(len, folded), default=0)
    keys = np.asarray(folded, dtype=str if longest <= 64 else object)
    order = np.argsort(keys, kind="stable")
    return [folded[i] for i in order.tolist()], present[order].astype(np.int64), raw


def build_index(premises: pd.DataFrame) -> AddressIndex:
    """The search index of ``premises`` (columns ``premise_id``, ``address``, ``location_id``).

    Positions in every :class:`SearchResult` are row positions of ``premises``.
    Built once: each distinct address is split once, each distinct street
    spelling folded once.
    """
    n = len(premises)
    id_keys: dict[str, tuple[list[str], IntArray]] = {}
    raw_ids: dict[str, npt.NDArray[np.object_]] = {}
    for kind in ("premise_id", "location_id"):
        if kind in premises:
            keys, rows, raw = _sorted_ids(premises[kind])
            id_keys[kind], raw_ids[kind] = (keys, rows), raw
    address = premises["address"] if "address" in premises else pd.Series([None] * n)
    codes, uniques = pd.factorize(address.astype(object).where(address.notna(), None),
                                  use_na_sentinel=True)
    parts = [split_address(a) for a in uniques.astype(str).tolist()]
    street_parts, number_parts = [p[0] for p in parts], [p[1] for p in parts]
    # fold each distinct street spelling once; spellings that fold alike are one street
    spelling_codes, spellings = pd.factorize(pd.Series(street_parts, dtype=object))
    key_codes, vocabulary = pd.factorize(pd.Series([street_key(s) for s in spellings.tolist()],
                                                   dtype=object))
    street_names: list[str] = [""] * len(vocabulary)
    for spelling, code in zip(spellings.tolist(), key_codes.tolist(), strict=True):
        if not street_names[code]:
            street_names[code] = str(spelling)
    # numbers in lexicographic order (searchsorted finds a typed number) ...
    number_codes, numbers = pd.factorize(pd.Series(number_parts, dtype=object), sort=True)
    numbers_lex = np.asarray(numbers.tolist(), dtype=str)
    # ... and their natural rank, so that a street's rows come in house order
    natural = {v: i for i, v in enumerate(_natural(numbers_lex.tolist()))}
    natural_rank = np.asarray([natural[v] for v in numbers_lex.tolist()], dtype=np.int64)
    has = codes >= 0
    row_street = np.full(n, -1, dtype=np.int64)
    row_number = np.full(n, -1, dtype=np.int64)
    if len(uniques):
        row_street[has] = np.asarray(key_codes, dtype=np.int64)[spelling_codes][codes[has]]
        row_number[has] = np.asarray(number_codes, dtype=np.int64)[codes[has]]
    rows = np.flatnonzero(has).astype(np.int64)
    order = rows[np.lexsort((rows, natural_rank[row_number[rows]], row_street[rows]))]
    street_sorted = row_street[order]
    street_ids = np.arange(len(vocabulary))
    return AddressIndex(
        size=n, id_keys=id_keys, raw_ids=raw_ids,
        street_keys=[str(k) for k in vocabulary.tolist()], street_names=street_names,
        numbers=numbers_lex, order=order,
        street_start=np.searchsorted(street_sorted, street_ids, side="left").astype(np.int64),
        street_end=np.searchsorted(street_sorted, street_ids, side="right").astype(np.int64),
        row_number=row_number,
    )


#: Properties of each hit: the premise's fields and its serviceability.
HIT_PROPERTIES = ("premise_id", "address", "location_id", "units", "kind", "connected",
                  "passed", "distance_m", "served_span_id", "span_protected", "node_protected",
                  "duct_protected", "loss_db", "margin_db", "in_budget")


@dataclass
class PremiseSearch:
    """An :class:`AddressIndex` over analysed premises, answering with GeoJSON.

    ``premises`` is ``Analysis.premises`` (the result columns included);
    ``columns`` holds its :data:`HIT_PROPERTIES` as plain arrays (taking a few rows
    of a million-row frame costs more than the search), ``lonlat`` the WGS84
    position of each row.
    """

    index: AddressIndex
    premises: pd.DataFrame
    columns: dict[str, Any]      #: per property, the column's values (indexable by row)
    lonlat: npt.NDArray[np.float64]

    def search(self, text: str, *, limit: int = DEFAULT_SEARCH_LIMIT) -> dict[str, object]:
        """The hits of ``text`` as a GeoJSON FeatureCollection, best first.

        Each feature's ``id`` and ``properties.premise_id`` are the premise_id; the
        properties are :data:`HIT_PROPERTIES` plus ``match``, ``score`` and
        ``house_number_match`` (whether the hit has the house number asked for; None
        when none was asked for or an id matched). The collection carries
        ``suggestions`` (nearby spellings when nothing matched) and
        ``house_number_not_found``: None, or the ``street``, the ``number`` asked for
        and the addresses with the ``nearest`` numbers that street has, when the
        best hit lacks the number (or the street matched but none of its numbers).
        """
        found = self.index.search(text, limit=limit)
        features = []
        for i, row in enumerate(found.positions.tolist()):
            properties = {c: json_safe(_cell(values[row])) for c, values in self.columns.items()}
            properties["match"] = found.match[i]
            properties["score"] = found.score[i]
            properties["house_number_match"] = found.number_match[i]
            lon, lat = self.lonlat[row]
            features.append({
                "type": "Feature", "id": properties["premise_id"],
                "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
                "properties": properties,
            })
        missing = found.number_not_found
        return {"type": "FeatureCollection", "features": features,
                "numberReturned": len(features), "suggestions": found.suggestions,
                "house_number_not_found": None if missing is None else {
                    "street": missing.street, "number": missing.number,
                    "nearest": [str(self.columns["address"][p])
                                for p in missing.positions.tolist()]}}


def premise_search(premises: gpd.GeoDataFrame, *,
                   index: AddressIndex | None = None) -> PremiseSearch:
    """A :class:`PremiseSearch` over analysed ``premises`` (``Analysis.premises``).

    ``index``: the address index of an earlier state of the same premises, when
    :func:`same_keys` holds (only values shown in hits changed): a live analysis
    then makes the search of each new state without indexing a million addresses.

    Examples
    --------
    >>> from netgis.engine.analysis import analyze
    >>> from netgis.generate import generate_city
    >>> search = premise_search(analyze(generate_city(premises=200, seed=1)).premises)
    >>> hit = search.search(search.premises["address"].iloc[0])["features"][0]
    >>> hit["properties"]["match"], "passed" in hit["properties"]
    ('address', True)
    """
    from netgis.engine.coverage import lonlat

    crs = premises.crs if premises.crs is not None else 4326
    # the columns as they are: a hit takes one value of each, nothing is copied per state
    columns = {c: premises[c].array for c in HIT_PROPERTIES if c in premises}
    return PremiseSearch(build_index(premises) if index is None else index, premises, columns,
                         lonlat(premises.geometry.to_numpy(), CRS(crs)))


#: The columns an :class:`AddressIndex` is built from.
INDEX_COLUMNS = ("premise_id", "address", "location_id")


def same_keys(before: pd.DataFrame, after: pd.DataFrame) -> bool:
    """Whether two states of the premises have the same rows in the same order with the same
    :data:`INDEX_COLUMNS` (so one address index serves both).

    Examples
    --------
    >>> a = pd.DataFrame({"premise_id": ["p1", "p2"], "address": ["1 Main St", None]})
    >>> same_keys(a, a.assign(units=[3, 4])), same_keys(a, a.iloc[::-1])
    (True, False)
    """
    if len(before) != len(after):
        return False
    for col in INDEX_COLUMNS:
        if (col in before) != (col in after):
            return False
        if col in before and not before[col].reset_index(drop=True).equals(
                after[col].reset_index(drop=True)):
            return False
    return True


def _cell(value: Any) -> Any:
    """One value of a column as a hit shows it: missing values (NA, NaN, None) as None."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value
