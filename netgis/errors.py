"""One exception hierarchy for netgis.

Every error a user can cause is a :class:`NetgisError`. Problems found in a
dataset carry the layer, feature id, field and reason, so the command line and
the API can report each one without parsing messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a dataset.

    Examples
    --------
    >>> Problem("spans", "s1", "to_node", "names no existing node: 'X'").as_dict()["field"]
    'to_node'
    """

    layer: str
    id: str | None
    field: str | None
    reason: str

    def __post_init__(self) -> None:
        # a problem is for reporting: text that no UTF-8 encoder accepts (a lone surrogate
        # from a JSON "\\ud800" escape) would make the report itself fail to print or to
        # be sent, so such characters are kept as backslash escapes
        for name in ("layer", "id", "field", "reason"):
            value = getattr(self, name)
            if isinstance(value, str) and not encodable(value):
                object.__setattr__(self, name, value.encode("utf-8", "backslashreplace")
                                   .decode("utf-8"))

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready ``{layer, id, field, reason}``."""
        return asdict(self)

    def __str__(self) -> str:
        where = self.layer
        if self.id is not None:
            where += f" id={_printable(self.id)}"
        if self.field is not None:
            where += f" field={self.field}"
        return f"{where}: {self.reason}"


def encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (UTF-8 can encode it: no lone surrogate).

    Examples
    --------
    >>> encodable("café"), encodable(chr(0xD800))
    (True, False)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """``text`` as it stands, or quoted with escapes when it holds a control character.

    Problems are printed to terminals: a CR, a line feed or an ANSI escape in an id
    read from a file would otherwise rewrite what the user sees.
    """
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        return repr(text)
    return text


class NetgisError(Exception):
    """Base class of every error netgis raises on purpose."""


class ValidationError(NetgisError, ValueError):
    """A dataset, a record or a parameter breaks the data contract.

    ``problems`` lists every problem found, not only the first.
    """

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None) -> None:
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        n = len(self.problems)
        head = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {n - 5} more)" if n > 5 else ""
        super().__init__(f"{n} problem{'s' if n != 1 else ''}: {head}{more}")


class ParameterError(ValidationError):
    """A request parameter (a query value such as a bounding box or an H3 cell) is not usable.

    The API answers 400 for it, where a :class:`ValidationError` of the data is a 422.
    ``detail`` replaces the message made from the problems, when given.

    Examples
    --------
    >>> str(ParameterError([Problem("query", None, "bbox", "4 numbers")], "invalid bbox"))
    'invalid bbox'
    """

    def __init__(self, problems: list[Problem], detail: str | None = None) -> None:
        super().__init__(problems)
        if detail is not None:
            self.args = (detail,)


class DatasetFormatError(ValidationError):
    """A dataset path cannot be read: unknown format, missing file, two files for one layer."""


class LimitError(ValidationError):
    """Reading an input took more time, CPU time or memory than allowed (netgis.io.isolation);
    the problem names the limit and the setting that raises it."""


class UploadError(ValidationError):
    """An uploaded file cannot be taken as sent: a broken or unsafe archive, or not one
    dataset (the API answers 422; the kinds below have their own status).

    Examples
    --------
    >>> err = UploadTooLarge("the unzipped dataset is larger than 10 bytes")
    >>> str(err), err.problems[0].layer
    ('the unzipped dataset is larger than 10 bytes', 'dataset')
    """

    def __init__(self, detail: str, problems: list[Problem] | None = None) -> None:
        super().__init__(problems or [Problem("dataset", None, None, detail)])
        self.args = (detail,)


class UploadTooLarge(UploadError):
    """An upload unpacks to more than the server takes (413)."""


class UnsupportedUpload(UploadError):
    """An upload is not of a kind the server reads (415)."""


class NotFoundError(NetgisError, KeyError):
    """A feature, layer or run that was asked for does not exist."""

    def __init__(self, layer: str, id: str) -> None:
        self.layer = layer
        self.id = id
        super().__init__(f"{layer} has no feature with id {id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class ConflictError(NetgisError):
    """A write would create an id that already exists (insert mode) or break a reference."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems[:5]))


class StorageError(NetgisError):
    """The database cannot be reached or is not initialised."""


class StorageUnavailable(StorageError):
    """The database cannot serve now, but may again later: retrying makes sense.

    Raised for faults (the server is down or unreachable, the SpatiaLite file is
    missing, moved or read-only, the disk is full) and for contention past the
    busy timeout (a write waited that long for others to finish).

    Parameters
    ----------
    message
        What happened, for logs and the command line (may name hosts and paths).
    reason
        A short phrase safe to show to any client (names no host or path).
    retry_after
        Seconds after which a retry may succeed (HTTP ``Retry-After``).

    Examples
    --------
    >>> StorageUnavailable("sqlite3: database is locked", reason="the database is busy").retry_after
    5
    """

    def __init__(self, message: str, *, reason: str = "the database is not available",
                 retry_after: int = 5) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = int(retry_after)


class PreconditionFailed(NetgisError):
    """A conditional write (HTTP ``If-Match``) names a version the feature no longer has.

    Nothing was written. ``current`` is the version the feature has now.
    """

    def __init__(self, layer: str, id: str, current: int | str) -> None:
        self.layer = layer
        self.id = id
        #: an integer row version, or a design plan's ``p<n>`` / ``m<n>`` (docs/plans.md)
        self.current = current if isinstance(current, str) else int(current)
        super().__init__(f"{layer} {id!r} has changed (its version is now {self.current}); "
                         "read it again and retry")


class ConfigError(NetgisError, ValueError):
    """A setting or option has a value netgis cannot use."""
