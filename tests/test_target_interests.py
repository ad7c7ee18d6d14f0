"""Where the held-out item comes from (reproduce.target_interests)."""

import numpy as np
import pytest
import torch

from adasplit_env.data.datasets import load_dataset
from adasplit_env.data.synthetic import SyntheticConfig
from adasplit_env.errors import ConfigError
from adasplit_env.evaluation import write_user_ranks
from reproduce import target_interests as ti


def test_kinds_by_hand():
    # items 1..6; interests: 1,2 -> A(0); 3,4 -> B(1); 5,6 -> C(2)
    interests = np.array([-1, 0, 0, 1, 1, 2, 2])
    histories = np.array(
        [
            [0, 1, 3],  # ends on B
            [0, 1, 3],
            [0, 1, 3],
            [3, 3, 1],  # ends on A
        ]
    )
    targets = np.array([4, 2, 5, 3])
    kinds = ti.target_kinds(interests, histories, targets)
    assert [ti.TARGET_KINDS[k] for k in kinds] == ["latest", "earlier", "new", "earlier"]
    assert ti.kind_shares(kinds).tolist() == [0.25, 0.5, 0.25]


def test_kinds_need_left_padded_histories():
    with pytest.raises(ValueError, match="left padding"):
        ti.target_kinds(np.array([-1, 0]), np.array([[1, 0]]), np.array([1]))


def test_one_interest_per_user_makes_every_target_latest():
    """With one planted interest per user, every held-out item is of the latest item's
    interest; with several, some return to an earlier one, well above chance."""
    single = load_dataset(
        "synthetic", synthetic=SyntheticConfig(num_users=200, min_interests=1, max_interests=1)
    )
    histories, targets = ti.split_arrays(single, "test", 10)
    result = ti.target_interests(ti.item_interests(single, "planted"), histories, targets)
    assert result.shares.tolist() == [1.0, 0.0, 0.0]
    assert result.interests_per_history == 1.0
    assert result.chance[0] < 0.5  # permuted targets mostly leave the user's interest

    several = load_dataset(
        "synthetic", synthetic=SyntheticConfig(num_users=300, min_interests=3, max_interests=3)
    )
    histories, targets = ti.split_arrays(several, "test", 10)
    result = ti.target_interests(ti.item_interests(several, "planted"), histories, targets)
    assert result.shares[1] > 0.25 and result.shares[1] > 1.5 * result.chance[1]
    assert result.shares[2] < 0.1 < result.chance[2]
    assert abs(result.shares.sum() - 1.0) < 1e-9 and abs(result.chance.sum() - 1.0) < 1e-9


def test_clusters_recover_planted_structure():
    dataset = load_dataset("synthetic", synthetic=SyntheticConfig(num_users=400))
    histories, targets = ti.split_arrays(dataset, "test", 10)
    clusters = ti.target_interests(ti.item_interests(dataset, "clusters", 8), histories, targets)
    assert clusters.interests == 8
    assert clusters.shares[1] > 1.5 * clusters.chance[1]


def test_planted_needs_synthetic(tmp_path):
    path = tmp_path / "tiny.tsv"
    rows = [f"u{u}\ti{(u + k) % 7}\t{k}" for u in range(12) for k in range(6)]
    path.write_text("user_id\titem_id\ttimestamp\n" + "\n".join(rows) + "\n")
    dataset = load_dataset(str(path))
    with pytest.raises(ConfigError, match="planted"):
        ti.item_interests(dataset, "planted")
    with pytest.raises(ConfigError, match="unknown interest source"):
        ti.item_interests(dataset, "topics")


def test_difference_by_kind_splits_the_users():
    kinds = np.array([0, 1, 1, 2, 0, 1])
    ranks_b = np.full((2, 6), 11)  # beyond the cutoff: 0 everywhere
    ranks_a = np.where(kinds == 1, 1, 11)[None, :].repeat(2, axis=0)  # rank 1 on earlier
    by_kind = ti.difference_by_kind(ranks_a, ranks_b, kinds, resamples=50)
    assert by_kind["earlier"].difference == pytest.approx(100.0)
    assert by_kind["earlier"].users == 3
    assert by_kind["latest"].difference == 0.0 and by_kind["new"].difference == 0.0


@pytest.mark.slow
def test_cli_compares_runs_by_kind(tmp_path, capsys):
    dataset = load_dataset("synthetic", synthetic=SyntheticConfig())
    histories, targets = ti.split_arrays(dataset, "test", 10)
    kinds = ti.target_kinds(ti.item_interests(dataset, "planted"), histories, targets)
    for name, ranks in (("a", np.where(kinds == 1, 1, 20)), ("b", np.full(len(kinds), 20))):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.json").write_text("{}")
        write_user_ranks(run / "user_ranks.npz", {"test": torch.as_tensor(ranks)})
    code = ti.main(
        [
            "synthetic",
            "--interests",
            "planted",
            "--compare",
            str(tmp_path / "a"),
            str(tmp_path / "b"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    earlier = next(line for line in out.splitlines() if line.strip().startswith("earlier"))
    assert "+100.00 [+100.00, +100.00]" in earlier
    latest = next(line for line in out.splitlines() if line.strip().startswith("latest"))
    assert "+0.00" in latest


def test_cli_rejects_compare_over_several_datasets(capsys):
    assert ti.main(["synthetic", "garden", "--compare", "x", "y"]) != 0
    assert "exactly one dataset" in capsys.readouterr().err


def _split(sequences, num_items):
    from adasplit_env.data.interactions import UserSequences
    from adasplit_env.data.split import LeaveOneOutSplit

    users = np.array(["<pad>"] + [f"u{u}" for u in range(len(sequences))], dtype=object)
    items = np.array(["<pad>"] + [f"i{i}" for i in range(1, num_items + 1)], dtype=object)
    return LeaveOneOutSplit(
        UserSequences(
            [np.zeros(0, dtype=np.int64)] + [np.array(s) for s in sequences], items, users
        )
    )


def test_transition_ranks_by_hand():
    # training parts (the last two items of each sequence are held out):
    # 1 2 3 1 2 | 1 3 | 2 3  ->  steps 1->2 twice, 2->3, 3->1, 1->3, 2->3: from 2: 3 twice
    split = _split([[1, 2, 3, 1, 2, 9, 9], [1, 3, 9, 9], [2, 3, 9, 9]], num_items=9)
    ranks = ti.Transitions(split).ranks(np.array([1, 1, 2, 3, 3]), np.array([2, 3, 3, 1, 4]))
    # from 1: 2 (count 2) first, 3 (count 1) second; from 2: 3 first;
    # from 3: 1 first; 4 never follows 3: every other item ties with it, all 8 ahead
    assert ranks.tolist() == [1, 2, 1, 1, 9]


def test_transition_ties_count_against_the_target():
    split = _split([[1, 2, 1, 3, 9, 9]], num_items=9)  # from 1: 2 once, 3 once
    assert ti.Transitions(split).ranks(np.array([1, 1]), np.array([2, 3])).tolist() == [2, 2]


def test_last_of_interest():
    interests = np.array([-1, 0, 0, 1, 1])
    histories = np.array([[1, 3, 2, 4], [0, 0, 3, 4], [0, 1, 2, 2]])
    targets = np.array([1, 2, 3])
    # the last item of interest 0 in row 0 is 2; row 1 holds no item of interest 0
    assert ti.last_of_interest(interests, histories, targets).tolist() == [2, 0, 0]


def test_a_group_ending_on_the_targets_interest_predicts_it_on_planted_data():
    """On the synthetic data an interest's next item follows its own last item, so the
    transition model predicts the returning interest's item from that item, not from
    the history's last item."""
    dataset = load_dataset("synthetic", synthetic=SyntheticConfig(num_users=400))
    histories, targets = ti.split_arrays(dataset, "test", 10)
    interests = ti.item_interests(dataset, "planted")
    result = ti.target_interests(interests, histories, targets, split=dataset.split)
    assert result.earlier_from_interest > 80.0 > 5.0 > result.earlier_from_last


def test_cli_fails_before_any_output_on_bad_input(capsys):
    assert ti.main(["synthetic", "nosuch"]) == 2
    assert ti.main(["synthetic", "--compare", "/nonexistent/a", "/nonexistent/b"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown dataset 'nosuch'" in captured.err and "no finished run dir" in captured.err


def test_mixture_ranks_by_hand():
    # training parts: 1 2 3 1 2 | 1 3 | 2 3 -> P(.|1): 2 2/3, 3 1/3; P(.|2): 3 1; P(.|3): 1 1
    split = _split([[1, 2, 3, 1, 2, 9, 9], [1, 3, 9, 9], [2, 3, 9, 9]], num_items=9)
    transitions = ti.Transitions(split)
    items, probabilities = transitions.probabilities(1)
    assert items.tolist() == [2, 3] and probabilities.tolist() == pytest.approx([2 / 3, 1 / 3])
    sources = np.array([[1, 2], [1, 2], [1, 0], [3, 3]])
    weights = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 1.0], [0.5, 0.5]])
    # 3 scores 1/6 + 1/2 = 2/3 > 2's 1/3; then 2's 0.6 > 3's 0.4; a 0 source adds
    # nothing; 4 follows no source: every other item ties with it
    ranks = transitions.mixture_ranks(sources, weights, np.array([3, 3, 2, 4]))
    assert ranks.tolist() == [1, 2, 1, 9]
    # one source with weight 1 is the plain transition model
    single = transitions.mixture_ranks(np.array([[1], [1]]), np.ones((2, 1)), np.array([2, 3]))
    assert single.tolist() == transitions.ranks(np.array([1, 1]), np.array([2, 3])).tolist()


def test_memory_sources_by_hand():
    interests = np.array([-1, 0, 0, 1, 1, 2])
    histories = np.array([[1, 3, 2, 4, 5], [0, 0, 0, 1, 2], [0, 0, 0, 0, 4]])
    sources, weights = ti.memory_sources(interests, histories, "latest", 0.7)
    assert sources.tolist() == [[0, 0, 0, 0, 5], [0, 0, 0, 0, 2], [0, 0, 0, 0, 4]]
    assert weights[:, -1].tolist() == [1.0, 1.0, 1.0]
    sources, weights = ti.memory_sources(interests, histories, "interests", 0.7)
    # row 0: current interest 2 (item 5); interest 1 last at 4, interest 0 last at 2
    assert sources.tolist() == [[0, 0, 2, 4, 5], [0, 0, 0, 0, 2], [0, 0, 0, 0, 4]]
    np.testing.assert_allclose(weights[0], [0, 0, 0.15, 0.15, 0.7])
    np.testing.assert_allclose(weights[1], [0, 0, 0, 0, 1.0])  # one interest: all its
    sources, weights = ti.memory_sources(interests, histories, "items", 0.6)
    assert sources.tolist() == [[1, 3, 2, 4, 5], [0, 0, 0, 1, 2], [0, 0, 0, 0, 4]]
    np.testing.assert_allclose(weights[0], [0.1, 0.1, 0.1, 0.1, 0.6])
    np.testing.assert_allclose(weights[1], [0, 0, 0, 0.4, 0.6])
    with pytest.raises(ValueError, match="memory"):
        ti.memory_sources(interests, histories, "groups", 0.5)


def test_beside_sources_by_hand():
    interests = np.array([-1, 0, 0, 1, 1, 2])
    histories = np.array([[1, 3, 2, 4, 5]])
    items = ti.memory_sources(interests, histories, "items", 0.6)
    per_interest = ti.memory_sources(interests, histories, "interests", 0.7)
    sources, weights = ti.beside_sources(items, per_interest, 0.25)
    assert sources.tolist() == [[1, 3, 2, 4, 5, 0, 0, 2, 4, 5]]
    np.testing.assert_allclose(
        weights[0], [0.075, 0.075, 0.075, 0.075, 0.45, 0, 0, 0.0375, 0.0375, 0.175]
    )
    assert weights.sum() == pytest.approx(1.0)
    # a share of 0 scores as every item alone, 1 as the interests alone
    # P(.|1): 2 2/3, 3 1/3; P(.|2): 3 1; P(.|3): 1 1 (as in the mixture test)
    transitions = ti.Transitions(
        _split([[1, 2, 3, 1, 2, 9, 9], [1, 3, 9, 9], [2, 3, 9, 9]], num_items=9)
    )
    interests = np.array([-1, 0, 1, 0, 2, 2, 2, 2, 2, 2])
    histories = np.array([[1, 3, 2], [2, 1, 3], [3, 2, 1]])
    items = ti.memory_sources(interests, histories, "items", 0.5)
    per_interest = ti.memory_sources(interests, histories, "interests", 0.5)
    for targets in (np.array([3, 1, 2]), np.array([1, 2, 3])):
        for share, alone in ((0.0, items), (1.0, per_interest)):
            np.testing.assert_array_equal(
                transitions.mixture_ranks(*ti.beside_sources(items, per_interest, share), targets),
                transitions.mixture_ranks(*alone, targets),
            )


@pytest.mark.slow
def test_a_memory_per_planted_interest_beats_both_the_latest_item_and_every_item():
    """Planted data: each interest's last item names its next item, and other items'
    successors only dilute that; the predictors must show both."""
    dataset = load_dataset("synthetic", synthetic=SyntheticConfig(num_users=400))
    predictors = ti.memory_predictors(dataset, ti.item_interests(dataset, "planted"))
    assert predictors.mean("interests") > predictors.mean("items") + 3
    assert predictors.mean("items") > predictors.mean("latest") + 3
    assert predictors.latest_weight["latest"] == 1.0
    assert predictors.latest_weight["interests"] < 1.0
    # every item beside the interests takes the interests' side here
    assert predictors.beside_share > 0.0
    assert predictors.mean("beside") > predictors.mean("items") + 3


@pytest.mark.slow
def test_cli_memory_table(capsys):
    assert ti.main(["synthetic:num_users=300", "--interests", "planted", "--memory"]) == 0
    out = capsys.readouterr().out
    assert "First-order predictors" in out
    row = next(line for line in out.splitlines()[4:] if line.startswith("| synthetic"))
    assert len(row.split("|")) == 13  # 11 cells
