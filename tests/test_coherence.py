"""Group coherence (adasplit_env/analysis/coherence.py): PPMI against hand-computed values, and
the whole measure on planted data, where grouping by interest must beat grouping by time."""

import math

import numpy as np
import pytest

from adasplit_env.analysis.allocation_quality import Allocation
from adasplit_env.analysis.coherence import (
    CoOccurrence,
    coherence_of,
    contiguous_labels,
    within_across,
)
from adasplit_env.data import load_dataset
from adasplit_env.data.interactions import UserSequences
from adasplit_env.data.split import LeaveOneOutSplit


def split_of(train_parts):
    """Users 1..n with these training items, each followed by item 4 twice (val, test)."""
    sequences = [np.zeros(0, dtype=np.int64)]
    sequences += [np.array([*items, 4, 4], dtype=np.int64) for items in train_parts]
    users = np.array(["<pad>", *(f"u{u}" for u in range(len(train_parts)))], dtype=object)
    items = np.array(["<pad>", "a", "b", "c", "d"], dtype=object)
    return LeaveOneOutSplit(UserSequences(sequences, items, users))


def test_ppmi_by_hand_and_without_the_users_own_history():
    # users' training items {1,2}, {1,2}, {1,3}, {3}: n1 = 3, n2 = 2, n3 = 2, U = 4,
    # c12 = 2, c13 = 1, c23 = 0; item 4 is in no training sequence
    counts = CoOccurrence(split_of([[1, 2], [2, 1], [1, 3], [3]]))
    ppmi = counts.ppmi(np.array([1, 2, 3, 4]))
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = math.log(2 * 4 / (3 * 2))  # PMI(1,3) < 0 -> 0
    np.testing.assert_allclose(ppmi, expected)
    # user 1 left out: U = 3, n1 = 2, n2 = 1, c12 = 1, c13 = 1 (PMI log(3/4) < 0)
    alone = counts.ppmi(np.array([1, 2, 3]), leave_out_user=1)
    assert alone[0, 1] == pytest.approx(math.log(1 * 3 / (2 * 1)))
    assert alone[0, 2] == 0.0 and alone[1, 2] == 0.0
    # a repeated item: its own pair is the diagonal's, 0
    assert counts.ppmi(np.array([1, 1]))[0, 1] == pytest.approx(math.log(3 * 4 / (3 * 3)))


def test_within_across_and_consecutive_runs():
    ppmi = np.array([[0, 2, 0], [2, 0, 1], [0, 1, 0]], dtype=float)
    assert within_across(ppmi, np.array([0, 0, 1])) == (2.0, 0.5)
    within, across = within_across(ppmi, np.array([0, 1, 2]))
    assert math.isnan(within) and across == pytest.approx(1.0)
    assert contiguous_labels(np.array([0, 1, 0, 2, 1])).tolist() == [0, 0, 1, 1, 2]


def fixed_allocation(dataset, label_of, max_len: int = 10) -> Allocation:
    """The test histories allocated by ``label_of(histories)`` instead of a policy."""
    samples = dataset.split.eval_samples("test", max_len)
    histories = samples.histories.numpy()
    labels = np.where(histories != 0, label_of(histories), -1)
    filled = np.array([len(np.unique(row[row >= 0])) for row in labels])
    return Allocation(samples.users.numpy(), histories, labels, filled, filled)


def test_interest_groups_beat_time_segments_on_planted_data():
    dataset = load_dataset("synthetic")
    planted = fixed_allocation(dataset, lambda histories: dataset.item_groups[histories])
    by_interest = coherence_of(planted, dataset.split, resamples=200)
    assert by_interest.split_users > 100
    assert abs(by_interest.permuted_gap) < 0.1  # shuffled labels: no structure
    mean, low, _ = by_interest.over_contiguous
    assert low > 0.5 and by_interest.gap > by_interest.contiguous_gap + 0.5

    def halves(histories):  # the first and second half of each history: time alone
        positions = np.arange(histories.shape[1])
        return np.broadcast_to(positions >= histories.shape[1] // 2, histories.shape).astype(int)

    by_time = coherence_of(fixed_allocation(dataset, halves), dataset.split, resamples=200)
    assert by_time.split_users > 100
    assert by_time.gap == pytest.approx(by_time.contiguous_gap)  # halves are consecutive runs
    assert by_time.gap < by_interest.gap - 0.5
