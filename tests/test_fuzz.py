"""Property-based tests of every reader and of the config loader.

Whatever the bytes, a reader either returns interactions or raises the
project's own one-line error (which the command lines print and exit 2 with);
never another exception. Derandomised, so every run checks the same cases:
FUZZ_EXAMPLES per test.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adasplit_env.data.datasets import load_dataset
from adasplit_env.data.interactions import Interactions
from adasplit_env.data.readers import FORMATS, read_interactions
from adasplit_env.errors import AdaSplitError, ConfigError
from agents.config import TrainConfig, read_config_file

FUZZ_EXAMPLES = 150
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
HEADERS = {
    "tsv": "user_id\titem_id\ttimestamp",
    "hetrec-user-artists": "userID\tartistID\tweight",
    "hetrec-tagged-timestamps": "userID\tartistID\ttagID\ttimestamp",
}
SEPARATORS = {"amazon-csv": ","}
NAMES = {
    "tsv": "interactions.tsv",
    "amazon-json": "reviews.json",
    "amazon-csv": "ratings.csv",
    "hetrec-user-artists": "user_artists.dat",
    "hetrec-tagged-timestamps": "user_taggedartists-timestamps.dat",
}

# field values as a user's file may hold them: ids, huge ids, unicode, empty, odd numbers
FIELDS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
    st.sampled_from(["", " ", "nan", "inf", "1e400", "\u00e9t\u00e9", "\u2603", "0x1f", "1_000"]),
)


def _read(path: Path, fmt: str) -> None:
    """The reader and the whole pipeline after it: read, or fail with our one-line error."""
    try:
        interactions = read_interactions(path, format=fmt)
        assert isinstance(interactions, Interactions)
        load_dataset(str(path), format=fmt, k_core=1)
    except AdaSplitError as err:
        message = str(err)
        assert message and "\n" not in message, message


def _lines(fmt: str, rows: list[list[str]]) -> str:
    if fmt == "amazon-json":
        keys = ("reviewerID", "asin", "unixReviewTime")
        body = [json.dumps(dict(zip(keys, row))) if row else "{" for row in rows]
        return "\n".join(body) + "\n"
    separator = SEPARATORS.get(fmt, "\t")
    header = [HEADERS[fmt]] if fmt in HEADERS else []
    return "\n".join(header + [separator.join(row) for row in rows]) + "\n"


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.binary(max_size=400), compress=st.booleans())
def test_arbitrary_bytes(fmt, data, compress):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / NAMES[fmt]
        path.write_bytes(gzip.compress(data) if compress else data)
        _read(path, fmt)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(rows=st.lists(st.lists(FIELDS, min_size=0, max_size=5), max_size=12))
def test_malformed_rows(fmt, rows):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / NAMES[fmt]
        path.write_text(_lines(fmt, rows), encoding="utf-8")
        _read(path, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(cut=st.floats(min_value=0.0, max_value=0.999))
def test_truncated_gzip(fmt, cut):
    rows = [
        [f"u{u}", f"i{(u * 7 + k) % 13}", str(k), str(k)][:4] for u in range(8) for k in range(6)
    ]
    if fmt in ("tsv", "hetrec-user-artists"):
        rows = [row[:3] for row in rows]
    packed = gzip.compress(_lines(fmt, rows).encode())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / (NAMES[fmt] + ".gz")
        path.write_bytes(packed[: max(1, int(len(packed) * cut))])
        _read(path, fmt)


OPTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
)
OPTION_NAMES = st.one_of(
    st.sampled_from([f.replace("_", "-") for f in TrainConfig.__dataclass_fields__]),
    st.text(max_size=10),
)


@FUZZ
@given(values=st.dictionaries(OPTION_NAMES, OPTION_VALUES, max_size=6), suffix=st.booleans())
def test_config_files_with_any_values(values, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("c.json" if suffix else "c.yaml")
        path.write_text(json.dumps(values))  # JSON is YAML too
        try:
            TrainConfig.from_dict(read_config_file(path)).validate()
        except ConfigError as err:
            assert "\n" not in str(err)


@FUZZ
@given(text=st.text(max_size=200), suffix=st.sampled_from([".yaml", ".json", ".yml"]))
def test_config_files_with_any_text(text, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"c{suffix}"
        path.write_text(text, encoding="utf-8")
        try:
            TrainConfig.from_dict(read_config_file(path)).validate()
        except ConfigError as err:
            assert "\n" not in str(err)
