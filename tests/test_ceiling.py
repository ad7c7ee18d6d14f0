"""The generator's next-item distribution (the Bayes predictor) and the ceiling CLI."""

import numpy as np
import pytest

from adasplit_env.data.synthetic import (
    SyntheticConfig,
    next_item_probabilities,
    planted_item,
    planted_item_id,
)
from reproduce import ceiling
from reproduce.ceiling import expected_metric, synthetic_ceiling

SMALL = SyntheticConfig(num_groups=3, items_per_group=4, switch_prob=0.5, noise=0.2)


def test_planted_item_ids_round_trip():
    assert planted_item(planted_item_id(7, 29)) == (7, 29)


def test_next_item_probabilities_by_hand():
    # user interests 0 and 2; the history ends in group 0 at k = 3, group 2 last at k = 1
    window = [(2, 1), (0, 3)]
    full = next_item_probabilities(SMALL, (0, 2), window).reshape(3, 4)
    # stay in 0 (0.5) or switch to 2 (0.5); the cycle's next item with 0.8, else uniform
    np.testing.assert_allclose(full[0], [0.425, 0.025, 0.025, 0.025])
    np.testing.assert_allclose(full[1], [0, 0, 0, 0])
    np.testing.assert_allclose(full[2], [0.025, 0.025, 0.425, 0.025])
    latest = next_item_probabilities(SMALL, (0, 2), window, memory="latest").reshape(3, 4)
    np.testing.assert_allclose(latest[0], full[0])
    np.testing.assert_allclose(latest[2], [0.125] * 4)  # its position is not kept
    # one interest: no switch
    alone = next_item_probabilities(SMALL, (1,), [(1, 0)]).reshape(3, 4)
    np.testing.assert_allclose(alone[1], [0.05, 0.85, 0.05, 0.05])
    assert alone.sum() == pytest.approx(1.0)
    # an interest absent from the window is uniform either way
    unseen = next_item_probabilities(SMALL, (0, 1), [(0, 0)]).reshape(3, 4)
    np.testing.assert_allclose(unseen[1], [0.125] * 4)
    with pytest.raises(ValueError, match="memory"):
        next_item_probabilities(SMALL, (0,), [(0, 0)], memory="all")


def test_expected_metric_breaks_ties_at_random():
    scores = np.array([0.0, 0.5, 0.2, 0.2, 0.1])  # [0] is padding
    assert expected_metric(scores, 1, "MRR@10") == pytest.approx(100.0)
    # items 2 and 3 tie at ranks 2-3
    assert expected_metric(scores, 2, "MRR@10") == pytest.approx(100 * (1 / 2 + 1 / 3) / 2)
    assert expected_metric(scores, 4, "NDCG@10") == pytest.approx(100 / np.log2(5))
    assert expected_metric(scores, 4, "NDCG@3") == 0.0


@pytest.mark.slow
def test_every_held_out_item_is_possible_and_the_gap_tracks_the_noise():
    # without noise a zero probability would show any step the model of the
    # generator gets wrong
    result = synthetic_ceiling("synthetic:noise=0.0,num_users=300", metrics=("HR@30",))
    assert result.mean("interests", "HR@30") > 99.0  # each target in its block of <= 30
    cycle = synthetic_ceiling("synthetic")
    random_order = synthetic_ceiling("synthetic:noise=1.0")
    # the cycle's order is what a state per interest can use
    assert cycle.mean("interests", "NDCG@10") > cycle.mean("latest", "NDCG@10") + 10
    assert cycle.mean("interests", "NDCG@10", "earlier") > 50
    assert cycle.mean("latest", "NDCG@10", "earlier") < 10
    # items drawn at random inside an interest: nothing for it to use
    assert random_order.mean("interests", "NDCG@10") == pytest.approx(
        random_order.mean("latest", "NDCG@10")
    )


def test_cli_prints_a_row_per_spec_and_refuses_real_data(capsys):
    assert ceiling.main(["synthetic:num_users=200"]) == 0
    out = capsys.readouterr().out
    assert "| synthetic:num_users=200 | 200 |" in out
    assert ceiling.main(["garden"]) == 2
    assert "the ceiling needs the generator" in capsys.readouterr().err
    assert ceiling.main(["synthetic:nois=1"]) == 2
    assert "fields" in capsys.readouterr().err
