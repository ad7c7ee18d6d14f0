"""The end-of-run verdict: a run's allocation and NDCG@10 beside their controls."""

from agents.config import TrainConfig
from agents.verdict import SYNTHETIC_REFERENCES, allocation_is_one_group, verdict


def results(groups, ari_multi, ndcg, planted=2.33):
    return {
        "test": {"NDCG@10": ndcg},
        "groups_per_user": groups,
        "filled_groups_per_user": groups,
        "allocation_ari_multi_interest": ari_multi,
        "allocation_ari_multi_interest_random": 0.008,
        "allocation_ari_multi_interest_one_group": 0.0,
        "planted_groups_per_user": planted,
    }


def test_a_few_groups_that_ignore_the_interests_count_as_one_group():
    """The newcomer's run: 1.19 groups per user, ARI 0.000 over multi-interest users."""
    assert allocation_is_one_group(results(1.19, 0.0, 18.33))
    assert allocation_is_one_group(
        results(1.00, None, 5.0) | {"allocation_ari_multi_interest": None}
    )
    assert allocation_is_one_group({"groups_per_user": 1.02})  # real data: no ARI
    assert not allocation_is_one_group(results(3.8, 0.77, 74.0))
    assert not allocation_is_one_group({"groups_per_user": 2.4})


def test_the_verdict_names_the_controls_and_says_which_side_the_run_is_on():
    config = TrainConfig()  # synthetic, l = 10: the references apply
    lines = "\n".join(verdict(results(1.19, 0.0, 18.33), config))
    for reference in SYNTHETIC_REFERENCES:
        assert f"{reference.label} {reference.ndcg10:.2f}" in lines
    assert "no better than one group" in lines
    assert f"{SYNTHETIC_REFERENCES[0].ndcg10 - 18.33:.1f} points below SASRec" in lines
    good = "\n".join(verdict(results(3.8, 0.77, 74.0), config))
    assert "separates the planted interests" in good and "AdaSplit+'s level" in good
    assert "no better than one group" not in good
    other_length = "\n".join(verdict(results(3.8, 0.77, 74.0), TrainConfig(max_len=20)))
    assert "SASRec" not in other_length  # no reference measured at l = 20
    assert verdict({"test": {"NDCG@10": 60.0}}, config) == []  # a baseline has no allocation
