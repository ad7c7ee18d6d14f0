"""Stage 0 of the data path: raw files -> :class:`Interactions`.

Supported formats (``format=`` or detected from the file name):

* ``tsv``: the canonical ``interactions.tsv`` / ``.tsv.gz`` with the header
  ``user_id<TAB>item_id<TAB>timestamp``.
* ``amazon-json``: Amazon 2014 review JSON lines (``reviewerID``, ``asin``,
  ``unixReviewTime``), plain or gzip (``*.json``, ``*.json.gz``, ``*.jsonl``).
* ``amazon-csv``: Amazon 2014 rating CSV ``user,item,rating,timestamp`` with no
  header (``*.csv``, ``*.csv.gz``).
* ``hetrec-user-artists``: hetrec2011 Last.fm ``user_artists.dat``
  (``userID artistID weight``); it has no time, so the file order is used.
* ``hetrec-tagged-timestamps``: hetrec2011 Last.fm
  ``user_taggedartists-timestamps.dat`` (``userID artistID tagID timestamp``);
  one interaction per (user, artist), dated by its first tag.

Every malformed line raises :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

from adasplit_env.data.interactions import Interactions
from adasplit_env.errors import DataError

FORMATS = (
    "tsv",
    "amazon-json",
    "amazon-csv",
    "hetrec-user-artists",
    "hetrec-tagged-timestamps",
)


def detect_format(path: str | os.PathLike) -> str:
    """Guess the format from the file name (see the module docstring)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name == "user_artists.dat":
        return "hetrec-user-artists"
    if name == "user_taggedartists-timestamps.dat":
        return "hetrec-tagged-timestamps"
    if name.endswith((".json", ".jsonl")):
        return "amazon-json"
    if name.endswith(".csv"):
        return "amazon-csv"
    if name.endswith((".tsv", ".inter")):
        return "tsv"
    raise DataError(
        f"{path}: cannot tell the format from the file name; "
        f"name one of {', '.join(FORMATS)} explicitly"
    )


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without newline), gzip or plain."""
    try:
        with open(path, "rb") as probe:
            is_gzip = probe.read(2) == b"\x1f\x8b"
        raw = gzip.open(path, "rb") if is_gzip else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    try:
        with io.TextIOWrapper(raw, encoding="utf-8", errors="strict") as text:
            for number, line in enumerate(text, start=1):
                yield number, line.rstrip("\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read the file ({err})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None


def _number(text: str, path: Path, line_no: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}, line {line_no}: {what} {text!r} is not a number") from None
    if value != value:  # NaN
        raise DataError(f"{path}, line {line_no}: {what} is NaN")
    return value


def _require_id(text: str, path: Path, line_no: int, what: str) -> str:
    text = text.strip()
    if not text:
        raise DataError(f"{path}, line {line_no}: empty {what}")
    return text


def read_tsv(path: Path) -> Interactions:
    users, items, times = [], [], []
    lines = _open_lines(path)
    header = next(lines, None)
    if header is None:
        raise DataError(
            f"{path}: the file is empty (expected a header user_id, item_id, timestamp)"
        )
    columns = [c.strip() for c in header[1].split("\t")]
    if columns[:3] != ["user_id", "item_id", "timestamp"]:
        raise DataError(
            f"{path}, line 1: expected the header 'user_id<TAB>item_id<TAB>timestamp', "
            f"got {header[1][:80]!r}"
        )
    for line_no, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(
                f"{path}, line {line_no}: expected 3 tab-separated fields, got {len(fields)}"
            )
        users.append(_require_id(fields[0], path, line_no, "user_id"))
        items.append(_require_id(fields[1], path, line_no, "item_id"))
        times.append(_number(fields[2], path, line_no, "timestamp"))
    return Interactions.from_rows(users, items, times)


def read_amazon_json(path: Path) -> Interactions:
    users, items, times = [], [], []
    for line_no, line in _open_lines(path):
        if not line.strip():
            continue
        try:
            review = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(review, dict):
            raise DataError(f"{path}, line {line_no}: expected a JSON object")
        missing = [k for k in ("reviewerID", "asin", "unixReviewTime") if k not in review]
        if missing:
            raise DataError(f"{path}, line {line_no}: missing field(s) {', '.join(missing)}")
        users.append(_require_id(str(review["reviewerID"]), path, line_no, "reviewerID"))
        items.append(_require_id(str(review["asin"]), path, line_no, "asin"))
        times.append(_number(str(review["unixReviewTime"]), path, line_no, "unixReviewTime"))
    return Interactions.from_rows(users, items, times)


def read_amazon_csv(path: Path) -> Interactions:
    users, items, times = [], [], []
    for line_no, line in _open_lines(path):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 4:
            raise DataError(
                f"{path}, line {line_no}: expected 4 comma-separated fields "
                f"(user,item,rating,timestamp), got {len(fields)}"
            )
        users.append(_require_id(fields[0], path, line_no, "user"))
        items.append(_require_id(fields[1], path, line_no, "item"))
        _number(fields[2], path, line_no, "rating")
        times.append(_number(fields[3], path, line_no, "timestamp"))
    return Interactions.from_rows(users, items, times)


def _hetrec_rows(path: Path, expected_header: list[str]) -> Iterator[tuple[int, list[str]]]:
    lines = _open_lines(path)
    header = next(lines, None)
    if header is None:
        raise DataError(f"{path}: the file is empty")
    if header[1].split("\t")[: len(expected_header)] != expected_header:
        raise DataError(
            f"{path}, line 1: expected the header {' '.join(expected_header)}, "
            f"got {header[1][:80]!r}"
        )
    for line_no, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(expected_header):
            raise DataError(
                f"{path}, line {line_no}: expected {len(expected_header)} tab-separated "
                f"fields, got {len(fields)}"
            )
        yield line_no, fields


def read_hetrec_user_artists(path: Path) -> Interactions:
    """``user_artists.dat`` has no time: the row's position is its timestamp."""
    users, items, times = [], [], []
    for position, (line_no, fields) in enumerate(
        _hetrec_rows(path, ["userID", "artistID", "weight"])
    ):
        users.append(_require_id(fields[0], path, line_no, "userID"))
        items.append(_require_id(fields[1], path, line_no, "artistID"))
        _number(fields[2], path, line_no, "weight")
        times.append(float(position))
    return Interactions.from_rows(users, items, times)


def read_hetrec_tagged_timestamps(path: Path) -> Interactions:
    """One interaction per (user, artist), timestamped by its earliest tag."""
    first_time: dict[tuple[str, str], float] = {}
    for line_no, fields in _hetrec_rows(path, ["userID", "artistID", "tagID", "timestamp"]):
        key = (
            _require_id(fields[0], path, line_no, "userID"),
            _require_id(fields[1], path, line_no, "artistID"),
        )
        when = _number(fields[3], path, line_no, "timestamp")
        if key not in first_time or when < first_time[key]:
            first_time[key] = when
    users = [u for u, _ in first_time]
    items = [i for _, i in first_time]
    return Interactions.from_rows(users, items, list(first_time.values()))


_READERS = {
    "tsv": read_tsv,
    "amazon-json": read_amazon_json,
    "amazon-csv": read_amazon_csv,
    "hetrec-user-artists": read_hetrec_user_artists,
    "hetrec-tagged-timestamps": read_hetrec_tagged_timestamps,
}


def read_interactions(path: str | os.PathLike, format: str | None = None) -> Interactions:
    """Read any supported file into :class:`Interactions` (rows in file order)."""
    path = Path(path)
    if format is None:
        format = detect_format(path)
    if format not in _READERS:
        raise DataError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    return _READERS[format](path)
