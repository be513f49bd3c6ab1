"""The FCC Broadband Data Collection (BDC) fixed availability filing, from an analysis.

A facilities-based provider files, twice a year, every Fabric location where it offers
fixed broadband, as a *location list*: one CSV row per location with the eight fields of
the FCC's "How to Format Fixed Broadband Availability Location Lists" specification
(:data:`BDC_COLUMNS`). This module writes that list for the plant netgis analyses.

A Fabric location is filed when it meets a premise (by equal ``location_id``,
:func:`netgis.products.bead.premises_at_locations`) that the plant passes and, unless
``include_out_of_budget``, whose optical loss stays within the budget; with several
premises at one location, one such premise is enough. Every other location of the
Fabric file is left out with the first reason that holds, in this order:

``not_bsl``
    the Fabric says it is not a broadband serviceable location (``bsl_flag`` false);
``no_premise``
    no premise of the dataset carries its ``location_id``;
``not_passed``
    none of its premises is passed;
``out_of_budget``
    its premises are passed, but none within the optical budget.

Every row carries the one offer given (:class:`Offer`: provider, brand, technology,
speeds, latency, business/residential code), checked against the specification's value
rules before anything is read. Nothing is written when any input is wrong.

Examples
--------
>>> import pandas as pd
>>> premises = pd.DataFrame({"premise_id": ["p1", "p2", "p3"], "passed": [True, True, False],
...     "in_budget": [True, False, False],
...     "location_id": ["1000000001", "1000000002", "1000000003"]})
>>> fabric = pd.DataFrame({"location_id": ["1000000001", "1000000002", "1000000003",
...     "1000000004"], "bsl": [True, True, True, True]})
>>> offer = Offer(provider_id="131425", brand_name="Acme Fiber")
>>> result = bdc_filing(premises, fabric, offer)
>>> result.filing["location_id"].tolist()
['1000000001']
>>> result.summary["left_out_by_reason"]
{'not_bsl': 0, 'no_premise': 1, 'not_passed': 1, 'out_of_budget': 1}
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from netgis.errors import Problem, ValidationError
from netgis.io import atomic_dir
from netgis.products.bead import premises_at_locations
from netgis.schema import BDC_FILES

#: The columns of the location list, in the specification's order (the header row).
BDC_COLUMNS = ("provider_id", "brand_name", "location_id", "technology",
               "max_advertised_download_speed", "max_advertised_upload_speed", "low_latency",
               "business_residential_code")
#: The fixed technology codes of the specification and their names.
TECHNOLOGY_CODES: dict[int, str] = {
    0: "Other", 10: "Copper Wire", 40: "Coaxial Cable / HFC",
    50: "Optical Carrier / Fiber to the Premises", 60: "Geostationary Satellite",
    61: "Non-geostationary Satellite", 70: "Unlicensed Terrestrial Fixed Wireless",
    71: "Licensed Terrestrial Fixed Wireless", 72: "Licensed-by-Rule Terrestrial Fixed Wireless",
}
#: ``business_residential_code`` values: to whom the service is offered at the location.
BUSINESS_RESIDENTIAL_CODES: dict[str, str] = {
    "B": "business customers only", "R": "residential customers only",
    "X": "business and residential customers"}
#: Below 25/3 Mbps a service is reported as one of these tiers (download, upload), never
#: by its own speeds: 0/0 for at least 0.2 Mbps but under 10/1, 10/1 for at least 10/1
#: but under 25/3.
LOW_SPEED_TIERS = ((0, 0), (10, 1))
#: The speeds (download, upload, Mbps) from which a service is reported as it is.
REPORTED_FROM_MBPS = (25, 3)
#: Reasons a Fabric location is left out of the filing, in the order they are tried.
LEFT_OUT_REASONS: dict[str, str] = {
    "not_bsl": "the Fabric marks it as not a broadband serviceable location (bsl_flag false)",
    "no_premise": "no premise of the dataset carries this location_id",
    "not_passed": "the plant passes none of its premises",
    "out_of_budget": "its premises are passed, but none within the optical budget",
}
#: At most this many problems of an input file are listed one by one (all are counted).
MAX_LISTED_PROBLEMS = 1000
_LOCATION_ID = "^[1-8][0-9]{9}$"
_PROVIDER_ID = re.compile(r"[1-9][0-9]{5}")
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


@dataclass(frozen=True)
class Offer:
    """What is filed for every location: who offers which service, at which speeds.

    Parameters
    ----------
    provider_id
        The FCC's six-digit provider ID of the filer.
    brand_name
        The name the service is advertised under.
    technology
        A code of :data:`TECHNOLOGY_CODES` (50: fiber to the premises).
    max_down_mbps, max_up_mbps
        The maximum advertised download and upload speeds, whole Mbps.
    low_latency
        1 when the service's round-trip latency is at most 100 ms, else 0.
    business_residential_code
        ``B``, ``R`` or ``X`` (:data:`BUSINESS_RESIDENTIAL_CODES`).

    Examples
    --------
    >>> Offer(provider_id="131425", brand_name="Acme").check()
    >>> try:
    ...     Offer(provider_id="42", brand_name="Acme", max_up_mbps=2).check()
    ... except ValidationError as exc:
    ...     print([problem.field for problem in exc.problems])
    ['provider_id', 'max_advertised_download_speed/max_advertised_upload_speed']
    """

    provider_id: str
    brand_name: str
    technology: int = 50
    max_down_mbps: int = 1000
    max_up_mbps: int = 1000
    low_latency: int = 1
    business_residential_code: str = "X"

    def check(self) -> None:
        """Raise a ValidationError naming every value the specification does not allow."""
        problems = [Problem("parameters", None, name, reason)
                    for name, reason in _offer_problems(self)]
        if problems:
            raise ValidationError(problems)

    def row(self) -> dict[str, Any]:
        """The fields of a filing row other than ``location_id``."""
        return {"provider_id": self.provider_id, "brand_name": self.brand_name,
                "technology": int(self.technology),
                "max_advertised_download_speed": int(self.max_down_mbps),
                "max_advertised_upload_speed": int(self.max_up_mbps),
                "low_latency": int(self.low_latency),
                "business_residential_code": self.business_residential_code}


def _whole(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _offer_problems(offer: Offer) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if not isinstance(offer.provider_id, str) or not _PROVIDER_ID.fullmatch(offer.provider_id):
        out.append(("provider_id", "must be the FCC's 6-digit provider ID (e.g. 131425), got "
                                   f"{offer.provider_id!r}"))
    brand = offer.brand_name if isinstance(offer.brand_name, str) else ""
    if not brand.strip() or brand != brand.strip() or not brand.isprintable():
        out.append(("brand_name", "must be a name without line breaks or leading/trailing "
                                  f"spaces, got {offer.brand_name!r}"))
    if not _whole(offer.technology) or offer.technology not in TECHNOLOGY_CODES:
        codes = ", ".join(str(c) for c in TECHNOLOGY_CODES)
        out.append(("technology", f"must be one of {codes}, got {offer.technology!r}"))
    speeds_ok = True
    for name, value in (("max_advertised_download_speed", offer.max_down_mbps),
                        ("max_advertised_upload_speed", offer.max_up_mbps)):
        if not _whole(value) or int(value) < 0:
            out.append((name, f"must be a whole number of Mbps >= 0, got {value!r}"))
            speeds_ok = False
    if speeds_ok:
        down, up = int(offer.max_down_mbps), int(offer.max_up_mbps)
        if (down < REPORTED_FROM_MBPS[0] or up < REPORTED_FROM_MBPS[1]) \
                and (down, up) not in LOW_SPEED_TIERS:
            out.append(("max_advertised_download_speed/max_advertised_upload_speed",
                        f"{down}/{up} Mbps is below 25/3: report it as the tier 0/0 (at least "
                        "0.2 Mbps but below 10/1) or 10/1 (at least 10/1 but below 25/3)"))
    if not _whole(offer.low_latency) or offer.low_latency not in (0, 1):
        out.append(("low_latency", f"must be 1 (round trip at most 100 ms) or 0, got "
                                   f"{offer.low_latency!r}"))
    if offer.business_residential_code not in BUSINESS_RESIDENTIAL_CODES:
        out.append(("business_residential_code",
                    f"must be B, R or X, got {offer.business_residential_code!r}"))
    return out


def read_fabric(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The locations of a Fabric CSV: ``location_id`` (text) and ``bsl`` (bool), file order.

    Only ``location_id`` is required; ``bsl_flag``, when there, says which locations are
    broadband serviceable (``True``/``False``, also ``1``/``0``, ``t``/``f``, ``yes``/``no``);
    without it every location is. Other columns are not read.

    Raises
    ------
    ValidationError
        The file cannot be read or parsed, a column is missing, or rows are wrong: an
        empty location_id, one that is not a 10-digit Fabric id (from 1,000,000,000; the
        preliminary Fabric's ids, which begin with 9, cannot be filed), a duplicate, or a
        ``bsl_flag`` that is not a boolean; each problem names the file, line and column.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "fabric.csv"
    >>> _ = p.write_text("location_id,bsl_flag,latitude\\n1000000007,True,40.1\\n")
    >>> read_fabric(p).to_dict("records")
    [{'location_id': '1000000007', 'bsl': True}]
    >>> _ = p.write_text("location_id\\n1000000007\\n900000001\\n")
    >>> try:
    ...     read_fabric(p)
    ... except ValidationError as exc:
    ...     print(exc.problems[0].reason.split(" (")[0])
    fabric.csv line 3: '900000001' is not a Fabric location id
    """
    p = Path(path)
    header = _fabric_header(p)
    if "location_id" not in header:
        raise ValidationError([Problem("fabric", None, "location_id",
                                       f"{p.name}: missing column (the header has "
                                       f"{', '.join(header) or 'no column'})")])
    columns = ["location_id"] + (["bsl_flag"] if "bsl_flag" in header else [])
    malformed: list[Problem] = []

    def on_invalid(row: Any) -> str:
        if len(malformed) < MAX_LISTED_PROBLEMS:
            malformed.append(Problem("fabric", None, None,
                                     f"{p.name} line {row.number}: {row.expected_columns} "
                                     f"fields expected, {row.actual_columns} found"))
        return "skip"

    try:
        table = pacsv.read_csv(
            p, read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns, column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError([Problem("fabric", None, None,
                                       f"{p.name}: cannot parse: {exc}")]) from exc
    if malformed:
        raise ValidationError(malformed)
    ids = pc.utf8_trim_whitespace(table.column("location_id"))
    text = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    empty = _mask(pc.equal(pc.utf8_length(ids), 0))
    checks: list[tuple[str, np.ndarray, Callable[[int], str]]] = [
        ("location_id", empty, lambda i: "empty"),
        ("location_id", ~empty & ~_mask(pc.match_substring_regex(ids, _LOCATION_ID)),
         lambda i: f"{text[i]!r} is not a Fabric location id (10 digits from 1000000000; "
                   "ids of the preliminary Fabric, beginning with 9, cannot be filed)"),
    ]
    dup = pd.Series(text).duplicated(keep="first").to_numpy(bool) & ~empty
    if dup.any():
        first = pd.Series(np.arange(len(text))).groupby(text).transform("min").to_numpy()
        checks.append(("location_id", dup, lambda i: f"duplicate location_id (first on line "
                                                     f"{first[i] + 2})"))
    bsl = np.ones(len(text), dtype=bool)
    if "bsl_flag" in columns:
        raw = table.column("bsl_flag")
        flags = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
        bsl = _mask(pc.is_in(flags, pa.array(sorted(_TRUE))))
        shown = raw.to_numpy(zero_copy_only=False)
        checks.append(("bsl_flag", ~bsl & ~_mask(pc.is_in(flags, pa.array(sorted(_FALSE)))),
                       lambda i: f"must be True or False, got {shown[i]!r}"))
    _raise_problems(p.name, text, checks)
    return pd.DataFrame({"location_id": text, "bsl": bsl})


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow result as a numpy mask (null: false)."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _raise_problems(name: str, ids: np.ndarray,
                    checks: list[tuple[str, np.ndarray, Callable[[int], str]]]) -> None:
    """A ValidationError listing the rows each check marks, in line order (the first
    :data:`MAX_LISTED_PROBLEMS` one by one, the rest counted), if any row is marked."""
    marked = [(int(i), k) for k, (_, mask, _) in enumerate(checks)
              for i in np.flatnonzero(mask)[:MAX_LISTED_PROBLEMS]]
    if not marked:
        return
    total = sum(int(mask.sum()) for _, mask, _ in checks)
    marked.sort()
    listed = [Problem("fabric", ids[i] or None, checks[k][0],
                      f"{name} line {i + 2}: {checks[k][2](i)}")  # the header is line 1
              for i, k in marked[:MAX_LISTED_PROBLEMS]]
    if total > len(listed):
        listed.append(Problem("fabric", None, None,
                              f"{name}: and {total - len(listed)} more problems"))
    raise ValidationError(listed)


def _fabric_header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError([Problem("fabric", None, None,
                                       f"cannot read {path}: {exc}")]) from exc
    return [c.strip() for c in next(csv.reader([first]), [])]


@dataclass
class BdcResult:
    """The filing (``filing``: :data:`BDC_COLUMNS`, location_id order), the Fabric locations
    left out (``left_out``: location_id, reason, premise_ids) and the ``summary`` object."""

    filing: pd.DataFrame
    left_out: pd.DataFrame
    summary: dict[str, Any]


def bdc_filing(premises: pd.DataFrame, fabric: pd.DataFrame, offer: Offer, *,
               include_out_of_budget: bool = False,
               parameters: Mapping[str, Any] | None = None) -> BdcResult:
    """The fixed availability location list of the plant, and what was left out and why.

    Parameters
    ----------
    premises
        Analysed premises (``premise_id``, ``location_id``, ``passed``, ``in_budget``),
        e.g. ``Analysis.premises``.
    fabric
        Fabric locations (``location_id``, ``bsl``), e.g. :func:`read_fabric`.
    offer
        What every row says besides its location (checked first).
    include_out_of_budget
        File passed locations whose premises are all out of the optical budget too.
    parameters
        Extra entries of ``summary["parameters"]`` (e.g. the drop length and budget).

    Returns
    -------
    BdcResult
        ``summary`` has the offer, the Fabric's location count, ``filed``,
        ``left_out`` and ``left_out_by_reason`` (they add up to the location count),
        ``filed_out_of_budget`` and the served premises that cannot be filed
        (``served_premises_not_filed``: without a location_id, or with one the Fabric
        file does not hold).
    """
    offer.check()
    _require(premises, "premises", ("premise_id", "passed", "in_budget"))
    _require(fabric, "fabric", ("location_id", "bsl"))
    at = premises_at_locations(premises)
    passed = _flag(at["passed"])
    qualifies = passed & (_flag(at["in_budget"]) | include_out_of_budget)
    ids = _text(fabric["location_id"])
    # one integer per location id, over the Fabric's and the premises' ids together
    codes, uniques = pd.factorize(np.concatenate([ids, _text(at["location_id"])]))
    loc, prem_loc = codes[:len(ids)], codes[len(ids):]
    k = len(uniques)
    premises_at = np.bincount(prem_loc, minlength=k)[loc]
    any_passed = (np.bincount(prem_loc, weights=passed, minlength=k) > 0)[loc]
    any_in_budget = (np.bincount(prem_loc, weights=passed & _flag(at["in_budget"]),
                                 minlength=k) > 0)[loc]
    any_qualifies = (np.bincount(prem_loc, weights=qualifies, minlength=k) > 0)[loc]
    reason = np.select(
        [~fabric["bsl"].to_numpy(bool), premises_at == 0, ~any_passed, ~any_qualifies],
        list(LEFT_OUT_REASONS), default="")
    filed = reason == ""
    filed_ids = np.sort(ids[filed])
    filing = pd.DataFrame({**{c: [v] * len(filed_ids) for c, v in offer.row().items()},
                           "location_id": filed_ids})[list(BDC_COLUMNS)]
    named = _premise_ids(loc[~filed], prem_loc, _text(at["premise_id"]), k)
    out = pd.DataFrame({"location_id": ids[~filed], "reason": reason[~filed],
                        "premise_ids": named}).sort_values("location_id", kind="stable")
    served = _flag(premises["passed"])
    if not include_out_of_budget:
        served &= _flag(premises["in_budget"])
    in_fabric = np.zeros(k, dtype=bool)
    in_fabric[loc] = True
    summary: dict[str, Any] = {
        "offer": {**offer.row(), "technology_name": TECHNOLOGY_CODES[offer.technology]},
        "include_out_of_budget": bool(include_out_of_budget),
        "fabric_locations": len(ids),
        "filed": int(filed.sum()),
        "left_out": int((~filed).sum()),
        "left_out_by_reason": {r: int((reason == r).sum()) for r in LEFT_OUT_REASONS},
        "filed_out_of_budget": int((filed & ~any_in_budget).sum()),
        "filed_with_several_premises": int((filed & (premises_at > 1)).sum()),
        "served_premises_not_filed": {
            "without_location_id": int(served.sum() - qualifies.sum()),
            "location_not_in_fabric": int((qualifies & ~in_fabric[prem_loc]).sum()),
        },
        "parameters": dict(parameters or {}),
    }
    return BdcResult(filing.reset_index(drop=True), out.reset_index(drop=True), summary)


def _flag(column: pd.Series) -> np.ndarray:
    """A boolean column as a numpy mask (null: false)."""
    return np.array(column.fillna(False).to_numpy(dtype=bool), dtype=bool)  # a copy


def _text(column: pd.Series) -> np.ndarray:
    """A column as a numpy array of Python strings (hashing and sorting in numpy, not per
    row through Arrow)."""
    return np.asarray(column.astype(str).to_numpy(dtype=object), dtype=object)


def _premise_ids(locations: np.ndarray, prem_loc: np.ndarray, premise_id: np.ndarray,
                 k: int) -> np.ndarray:
    """For each location code in ``locations``, its premises' ids sorted and joined by
    ``;`` (empty when it has none); ``prem_loc`` is each premise's location code."""
    wanted = np.zeros(k, dtype=bool)
    wanted[locations] = True
    rows = np.flatnonzero(wanted[prem_loc])
    pairs = pd.DataFrame({"code": prem_loc[rows], "premise_id": premise_id[rows]}
                         ).sort_values(["code", "premise_id"], kind="stable")
    code = pairs["code"].to_numpy()
    pid = pairs["premise_id"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else code
    ends = np.r_[starts[1:], len(code)].astype(int)
    joined = np.full(k, "", dtype=object)
    one = ends - starts == 1  # most locations have one premise: no join needed
    joined[code[starts[one]]] = pid[starts[one]]
    for start, end in zip(starts[~one].tolist(), ends[~one].tolist(), strict=True):
        joined[code[start]] = ";".join(pid[start:end])
    return np.asarray(joined[locations], dtype=object)


def _require(frame: pd.DataFrame, layer: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError([Problem(layer, None, c, "missing column") for c in missing])


def filing_csv(filing: pd.DataFrame) -> str:
    """The location list as CSV text: the header row of :data:`BDC_COLUMNS`, then one row
    per location; a brand name with a comma or a quote is quoted.

    Examples
    --------
    >>> offer = Offer(provider_id="131425", brand_name="Acme, Inc")
    >>> frame = pd.DataFrame([{**offer.row(), "location_id": "1000000007"}])
    >>> print(filing_csv(frame[list(BDC_COLUMNS)]), end="")
    provider_id,brand_name,location_id,technology,max_advertised_download_speed,max_advertised_upload_speed,low_latency,business_residential_code
    131425,"Acme, Inc",1000000007,50,1000,1000,1,X
    """
    text: str = filing[list(BDC_COLUMNS)].to_csv(index=False, lineterminator="\n")
    return text


def summary_markdown(result: BdcResult, fabric_name: str = "the Fabric file") -> str:
    """The summary for a person to read, as Markdown.

    Examples
    --------
    >>> r = bdc_filing(pd.DataFrame({"premise_id": ["p"], "passed": [True],
    ...     "in_budget": [True], "location_id": ["1000000001"]}),
    ...     pd.DataFrame({"location_id": ["1000000001"], "bsl": [True]}),
    ...     Offer(provider_id="131425", brand_name="Acme"))
    >>> print(summary_markdown(r).splitlines()[2])
    1 of the 1 locations of the Fabric file are filed; 0 are left out.
    """
    s = result.summary
    o = s["offer"]
    lines = [
        "# BDC fixed availability filing", "",
        f"{s['filed']} of the {s['fabric_locations']} locations of {fabric_name} are filed; "
        f"{s['left_out']} are left out.", "",
        f"Every row: provider {o['provider_id']}, brand {o['brand_name']}, technology "
        f"{o['technology']} ({o['technology_name']}), "
        f"{o['max_advertised_download_speed']}/{o['max_advertised_upload_speed']} Mbps, "
        f"low_latency {o['low_latency']}, business_residential_code "
        f"{o['business_residential_code']}.", "",
        "| left out because | locations |", "|---|---:|",
        *(f"| {LEFT_OUT_REASONS[r]} (`{r}`) | {n} |"
          for r, n in s["left_out_by_reason"].items()),
        f"| **total** | **{s['left_out']}** |", "",
    ]
    if s["include_out_of_budget"]:
        lines += [f"Out-of-budget locations are filed too: {s['filed_out_of_budget']} of the "
                  "filed locations have no premise within the optical budget.", ""]
    extra = s["served_premises_not_filed"]
    lines += [
        f"Served premises that cannot be filed: {extra['without_location_id']} without a "
        f"location_id, {extra['location_not_in_fabric']} whose location_id is not in "
        f"{fabric_name}.", "",
        "The locations left out, each with its reason and premises, are in bdc_left_out.csv.",
    ]
    if s["parameters"]:
        shown = ", ".join(f"{k} {v}" for k, v in s["parameters"].items())
        lines += ["", f"Parameters: {shown}."]
    return "\n".join(lines) + "\n"


def write_bdc(result: BdcResult, out_dir: str | os.PathLike[str], *,
              fabric_name: str = "the Fabric file") -> Path:
    """Write :data:`netgis.schema.BDC_FILES` into ``out_dir``, all or nothing.

    The files are written into a staging folder and moved into place together
    (:func:`netgis.io.atomic_dir`); other files in ``out_dir`` stay.
    """
    availability, left_out, summary_json, summary_md = BDC_FILES
    out = Path(out_dir)
    with atomic_dir(out, merge=True) as tmp:
        (tmp / availability).write_text(filing_csv(result.filing), encoding="utf-8")
        result.left_out.to_csv(tmp / left_out, index=False, lineterminator="\n")
        (tmp / summary_json).write_text(
            json.dumps(result.summary, indent=1, allow_nan=False, ensure_ascii=False) + "\n",
            encoding="utf-8")
        (tmp / summary_md).write_text(summary_markdown(result, fabric_name), encoding="utf-8")
    return out

