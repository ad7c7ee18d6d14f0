import gzip
import json

import numpy as np
import pytest

from adasplit_env.data import detect_format, read_interactions
from adasplit_env.errors import DataError


def write(path, text, compress=False):
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_tsv_reads_rows_in_file_order(tmp_path, compress):
    name = "interactions.tsv.gz" if compress else "interactions.tsv"
    path = write(
        tmp_path / name,
        "user_id\titem_id\ttimestamp\nu1\ti9\t5\nu2\ti1\t3.5\nu1\ti2\t1\n",
        compress,
    )
    inter = read_interactions(path)
    assert inter.users.tolist() == ["u1", "u2", "u1"]
    assert inter.items.tolist() == ["i9", "i1", "i2"]
    np.testing.assert_array_equal(inter.timestamps, [5.0, 3.5, 1.0])


def test_tsv_bad_header_and_malformed_line_name_file_and_line(tmp_path):
    bad_header = write(tmp_path / "a.tsv", "user\titem\ttime\nu\ti\t1\n")
    with pytest.raises(DataError, match=r"a\.tsv, line 1: expected the header"):
        read_interactions(bad_header)
    short = write(tmp_path / "b.tsv", "user_id\titem_id\ttimestamp\nu\ti\t1\nu\ti\n")
    with pytest.raises(DataError, match=r"b\.tsv, line 3: expected 3 tab-separated fields, got 2"):
        read_interactions(short)
    long = write(tmp_path / "d.tsv", "user_id\titem_id\ttimestamp\nu\ti\t1\tx\n")
    with pytest.raises(DataError, match=r"d\.tsv, line 2: expected 3 tab-separated fields, got 4"):
        read_interactions(long)
    not_number = write(tmp_path / "c.tsv", "user_id\titem_id\ttimestamp\nu\ti\tyesterday\n")
    with pytest.raises(DataError, match=r"c\.tsv, line 2: timestamp 'yesterday' is not a number"):
        read_interactions(not_number)


@pytest.mark.parametrize("compress", [False, True])
def test_amazon_json(tmp_path, compress):
    rows = [
        {"reviewerID": "A1", "asin": "B01", "unixReviewTime": 1400000000, "overall": 5.0},
        {"reviewerID": "A2", "asin": "B02", "unixReviewTime": 1300000000},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    path = write(tmp_path / ("r.json.gz" if compress else "r.json"), text, compress)
    inter = read_interactions(path)
    assert inter.users.tolist() == ["A1", "A2"]
    assert inter.items.tolist() == ["B01", "B02"]
    np.testing.assert_array_equal(inter.timestamps, [1400000000, 1300000000])


def test_amazon_json_errors(tmp_path):
    path = write(
        tmp_path / "r.json", '{"reviewerID": "A", "asin": "B", "unixReviewTime": 1}\n{oops\n'
    )
    with pytest.raises(DataError, match=r"r\.json, line 2: not valid JSON"):
        read_interactions(path)
    path = write(tmp_path / "s.json", '{"reviewerID": "A", "unixReviewTime": 1}\n')
    with pytest.raises(DataError, match=r"s\.json, line 1: missing field\(s\) asin"):
        read_interactions(path)


def test_amazon_csv(tmp_path):
    path = write(tmp_path / "ratings_Beauty.csv", "A1,B1,5.0,1400000000\nA1,B2,3.0,1300000000\n")
    inter = read_interactions(path)
    assert inter.items.tolist() == ["B1", "B2"]
    np.testing.assert_array_equal(inter.timestamps, [1400000000, 1300000000])
    bad = write(tmp_path / "bad.csv", "A1,B1,5.0,1\nA1,B2,1\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 2: expected 4 comma-separated fields"):
        read_interactions(bad)


def test_hetrec_user_artists_uses_file_order(tmp_path):
    path = write(
        tmp_path / "user_artists.dat",
        "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t101\t12\n2\t53\t5\n",
    )
    inter = read_interactions(path)
    assert inter.users.tolist() == ["2", "2", "3", "2"]
    assert inter.items.tolist() == ["51", "52", "101", "53"]
    np.testing.assert_array_equal(inter.timestamps, [0, 1, 2, 3])


def test_hetrec_tagged_timestamps_one_row_per_pair_at_first_tag(tmp_path):
    path = write(
        tmp_path / "user_taggedartists-timestamps.dat",
        "userID\tartistID\ttagID\ttimestamp\n"
        "2\t52\t13\t1238536800000\n2\t52\t15\t1238500000000\n2\t63\t13\t1238536800000\n",
    )
    inter = read_interactions(path)
    pairs = dict(zip(zip(inter.users.tolist(), inter.items.tolist()), inter.timestamps.tolist()))
    assert pairs == {("2", "52"): 1238500000000.0, ("2", "63"): 1238536800000.0}


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_interactions(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format(tmp_path / "data.bin")
    assert detect_format("x/interactions.tsv.gz") == "tsv"
    assert detect_format("reviews_Beauty_5.json.gz") == "amazon-json"


def test_convert_writes_canonical_tsv(tmp_path):
    from adasplit_env.data.__main__ import main

    source = write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t3\n2\t52\t1\n")
    out = tmp_path / "x" / "interactions.tsv.gz"
    assert main(["convert", str(source), str(out)]) == 0
    again = read_interactions(out)
    assert again.users.tolist() == ["2", "2"] and again.items.tolist() == ["51", "52"]
    assert main(["convert", str(tmp_path / "missing.csv"), str(out)]) == 2
