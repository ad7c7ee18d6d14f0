import numpy as np
import pytest
import torch

from adasplit_env.data import (
    Interactions,
    LeaveOneOutSplit,
    build_sequences,
    kcore_filter,
    load_dataset,
)
from adasplit_env.errors import DataError


def rows(pairs, times=None):
    users = [u for u, _ in pairs]
    items = [i for _, i in pairs]
    return Interactions.from_rows(users, items, times if times is not None else range(len(pairs)))


def test_kcore_is_iterative():
    # k=2. Item "c" has one row: dropping it leaves user "y" with one row,
    # and dropping "y" leaves item "b" with one row: all must go in turn.
    inter = rows(
        [("x", "a"), ("x", "a2"), ("z", "a"), ("z", "a2"), ("y", "b"), ("y", "c"), ("w", "b")]
    )
    kept = kcore_filter(inter, 2)
    assert sorted(set(kept.users.tolist())) == ["x", "z"]
    assert sorted(set(kept.items.tolist())) == ["a", "a2"]
    assert len(kept) == 4
    assert kcore_filter(inter, 1) is inter


def test_build_sequences_is_dense_chronological_and_stable():
    inter = rows(
        [("u2", "b"), ("u1", "a"), ("u1", "c"), ("u2", "a"), ("u1", "b")],
        times=[5.0, 3.0, 1.0, 5.0, 3.0],
    )
    seqs = build_sequences(inter)
    # first appearance: users u2=1, u1=2; items b=1, a=2, c=3
    assert seqs.user_raw_ids.tolist() == ["<pad>", "u2", "u1"]
    assert seqs.item_raw_ids.tolist() == ["<pad>", "b", "a", "c"]
    # u2: b and a share time 5 -> file order b, a
    assert seqs.sequences[1].tolist() == [1, 2]
    # u1: c (t=1), then a and b share t=3 -> file order a, b
    assert seqs.sequences[2].tolist() == [3, 2, 1]
    assert seqs.num_interactions == 5


def make_split(sequences):
    inter = rows(
        [(f"u{u}", f"i{i}") for u, seq in enumerate(sequences) for i in seq],
        times=[t for seq in sequences for t in range(len(seq))],
    )
    return LeaveOneOutSplit(build_sequences(inter))


def test_leave_one_out_and_samples():
    split = make_split([[1, 2, 3, 4, 5, 6], [7, 8, 9]])
    seqs = split.sequences.sequences
    # items are numbered by first appearance: 1..9 -> 1..9
    assert seqs[1].tolist() == [1, 2, 3, 4, 5, 6]
    train = split.train_samples(max_len=3)
    # user 1 train part [1,2,3,4]: prefixes 1->2, 12->3, 123->4; user 2 train part [7]: none
    assert train.users.tolist() == [1, 1, 1]
    assert train.histories.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3]]
    assert train.targets.tolist() == [2, 3, 4]
    assert train.lengths.tolist() == [1, 2, 3]
    val = split.eval_samples("val", max_len=3)
    assert val.histories.tolist() == [[2, 3, 4], [0, 0, 7]]
    assert val.targets.tolist() == [5, 8]
    test = split.eval_samples("test", max_len=3)
    assert test.histories.tolist() == [[3, 4, 5], [0, 7, 8]]
    assert test.targets.tolist() == [6, 9]
    assert [s.tolist() for s in split.seen_items("test")] == [[1, 2, 3, 4, 5], [7, 8]]
    counts = split.train_item_counts()
    assert counts.tolist() == [0, 1, 1, 1, 1, 0, 0, 1, 0, 0]


def test_samples_batches_cover_everything_once():
    split = make_split([list(range(1, 12))])
    train = split.train_samples(max_len=4)
    seen = torch.cat(
        [
            b.targets
            for b in train.batches(3, shuffle=True, generator=torch.Generator().manual_seed(0))
        ]
    )
    assert sorted(seen.tolist()) == sorted(train.targets.tolist())


def test_bad_inputs():
    with pytest.raises(DataError, match="max_len must be >= 1"):
        make_split([[1, 2, 3]]).train_samples(0)
    with pytest.raises(DataError, match="unknown dataset 'nosuch'"):
        load_dataset("nosuch")
    with pytest.raises(DataError, match="empty after the 10000-core filter"):
        load_dataset("synthetic", k_core=10_000)


def test_named_dataset_missing_says_where_it_looked(tmp_path):
    with pytest.raises(
        DataError, match=r"dataset 'garden' not found at .*garden/interactions.tsv.gz"
    ):
        load_dataset("garden", data_dir=tmp_path)


def test_any_path_is_a_dataset(tmp_path):
    lines = ["user_id\titem_id\ttimestamp"]
    for u in range(6):
        for i in range(6):
            lines.append(f"u{u}\ti{(u + i) % 6}\t{i}")
    path = tmp_path / "mine.tsv"
    path.write_text("\n".join(lines) + "\n")
    dataset = load_dataset(str(path))
    assert (dataset.num_users, dataset.num_items, dataset.stats.interactions) == (6, 6, 36)
    assert np.all([len(s) == 6 for s in dataset.sequences.sequences[1:]])
