import math

import numpy as np
import pytest
import torch

from adasplit_env.errors import ConfigError
from adasplit_env.evaluation import USER_RANKS_FILE, write_user_ranks
from adasplit_env.metrics import full_ranking_metrics, metrics_from_ranks, target_ranks
from reproduce.paired import difference_by_groups, paired_difference, user_metric
from reproduce.paired import main as paired_main


def test_ranks_ignore_padding_and_count_ties_against_target():
    scores = torch.tensor(
        [
            [99.0, 0.5, 0.9, 0.1, 0.3],  # target 1 (0.5): only item 2 higher -> rank 2; pad ignored
            [0.0, 0.2, 0.2, 0.2, 0.1],  # target 2 ties items 1 and 3 -> rank 3
            [0.0, 1.0, 1.0, 1.0, 1.0],  # all equal -> target last: rank 4
            [0.0, float("nan"), 0.1, 0.2, 0.3],  # NaN target counts lowest -> rank 4
        ]
    )
    targets = torch.tensor([1, 2, 4, 1])
    assert target_ranks(scores, targets).tolist() == [2, 3, 4, 4]


def test_exclusion_of_history_never_removes_target():
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.7, 0.6]])
    targets = torch.tensor([3])
    assert target_ranks(scores, targets).item() == 3
    assert target_ranks(scores, targets, exclude=[np.array([1, 3])]).item() == 2


def test_metrics_hand_computed():
    ranks = torch.tensor([1, 2, 3, 6, 11])
    m = metrics_from_ranks(ranks, ks=(5, 10))
    ndcg5 = (1 + 1 / math.log2(3) + 1 / math.log2(4)) / 5 * 100
    ndcg10 = (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(7)) / 5 * 100
    assert m["NDCG@5"] == pytest.approx(ndcg5)
    assert m["NDCG@10"] == pytest.approx(ndcg10)
    assert m["MRR@5"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 5 * 100)
    assert m["MRR@10"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 6) / 5 * 100)
    assert m["HR@5"] == pytest.approx(60.0)
    assert m["HR@10"] == pytest.approx(80.0)


def test_constant_scorer_gets_nothing_from_ties():
    scores = torch.zeros(50, 21)
    targets = torch.randint(1, 21, (50,), generator=torch.Generator().manual_seed(0))
    m = full_ranking_metrics(scores, targets)
    assert m["HR@10"] == 0.0 and m["NDCG@10"] == 0.0


def test_chunking_does_not_change_the_result():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(300, 40, generator=gen)
    targets = torch.randint(1, 40, (300,), generator=gen)
    exclude = [np.array([1 + (u % 39)]) for u in range(300)]
    one = full_ranking_metrics(scores, targets, exclude=exclude, chunk_size=1000)
    many = full_ranking_metrics(scores, targets, exclude=exclude, chunk_size=7)
    assert one == pytest.approx(many)
    # against a loop over users
    ranks = []
    for u in range(300):
        s, t = scores[u], targets[u].item()
        others = [j for j in range(1, 40) if j != t and j not in exclude[u]]
        ranks.append(1 + sum(bool(s[j] >= s[t]) for j in others))
    assert one == pytest.approx(metrics_from_ranks(torch.tensor(ranks)))


def test_ranking_progress_bar_is_closed_when_the_ranking_ends():
    from tqdm import tqdm

    from adasplit_env.data import SyntheticConfig, load_dataset
    from adasplit_env.evaluation import evaluate_scorer, popularity_scorer

    dataset = load_dataset("synthetic", synthetic=SyntheticConfig(num_users=50, seed=0))
    evaluate_scorer(popularity_scorer(dataset), dataset, batch_size=8, progress=True)
    assert not [bar for bar in tqdm._instances if not bar.disable]  # none left open


def test_user_metric_averages_to_the_metrics():
    ranks = np.array([1, 2, 3, 7, 10, 11, 50, 4000])
    per_split = metrics_from_ranks(ranks)
    for key in ("NDCG@5", "MRR@10", "HR@10", "NDCG@10"):
        assert user_metric(ranks, key).mean() == pytest.approx(per_split[key])
    assert user_metric(np.array([2]), "NDCG@10")[0] == pytest.approx(100 / np.log2(3))
    with pytest.raises(ConfigError, match="unknown metric"):
        user_metric(ranks, "AUC")


def test_paired_difference_pairs_users_and_averages_seeds():
    # model A: two seeds; user 0 ranked 1 then 3, user 1 never in the top 10
    a = np.array([[1, 20], [3, 20]])
    b = np.array([[2, 20]])
    result = paired_difference(a, b, "MRR@10", resamples=2000, seed=0, resample_runs=False)
    assert result.mean_a == pytest.approx((100 + 100 / 3) / 2 / 2)
    assert result.difference == pytest.approx(result.mean_a - 25.0)
    assert result.low <= result.difference <= result.high
    # the bootstrap draws users: with 2 users it ranges over their mean differences
    assert result.low == pytest.approx(0.0) and result.high == pytest.approx(2 * result.difference)
    # resampling A's two runs too widens it: user 0's difference is then 50 (run 0 twice),
    # 16.67 or -16.67 (run 1 twice); each extreme has mass 1/16 > 2.5%
    both = paired_difference(a, b, "MRR@10", resamples=2000, seed=0)
    assert both.difference == result.difference
    assert both.high == pytest.approx(50.0) and both.low == pytest.approx(-100 / 6)
    same = paired_difference(b, b)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ConfigError, match="different users"):
        paired_difference(a, np.array([[1, 2, 3]]))


def test_paired_cli_reads_run_dirs_and_asks_for_backfill(tmp_path, capsys):
    for name, rank in (("a", 1), ("a-seed1", 1), ("b", 2)):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.json").write_text("{}")
        write_user_ranks(
            run / USER_RANKS_FILE, {s: torch.full((5,), rank) for s in ("val", "test")}
        )
    assert paired_main([str(tmp_path / "a*"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "A (2 runs): 100.00" in out and "A - B: +36.91 [+36.91, +36.91]" in out
    assert "over users and runs" in out
    (tmp_path / "b" / USER_RANKS_FILE).unlink()
    assert paired_main([str(tmp_path / "a*"), str(tmp_path / "b")]) == 2
    assert "--backfill" in capsys.readouterr().err


def test_difference_by_groups_pools_each_runs_users_by_their_groups():
    # A: 2 runs x 3 users, MRR@10 = 100 / rank; B: one run, every user at rank 2 (50)
    ranks_a = np.array([[1, 4, 1], [2, 1, 11]])
    groups_a = np.array([[1, 3, 2], [1, 1, 2]])
    ranks_b = np.array([[2, 2, 2]])
    one, several = difference_by_groups(ranks_a, groups_a, ranks_b, "MRR@10", resamples=500)
    # one group: (run 0, user 0) 100, (run 1, user 0) 50, (run 1, user 1) 100
    assert (one.label, one.share, one.gain.users) == ("1", 0.5, 2)
    assert one.gain.mean_a == pytest.approx(250 / 3) and one.gain.mean_b == pytest.approx(50)
    assert one.gain.difference == pytest.approx(100 / 3)
    # two or more: (run 0, user 1) 25, (run 0, user 2) 100, (run 1, user 2) 0
    assert (several.label, several.share, several.gain.users) == ("2+", 0.5, 2)
    assert several.gain.difference == pytest.approx(125 / 3 - 50)
    # resampling users: user 2 alone gives (50 - 50) / 2 = 0, user 1 alone -25
    assert several.gain.low == pytest.approx(-25) and several.gain.high == pytest.approx(0)
    only_one = difference_by_groups(ranks_a, np.ones_like(groups_a), ranks_b)
    assert [bucket.label for bucket in only_one] == ["1"]
    with pytest.raises(ConfigError, match="same runs and users"):
        difference_by_groups(ranks_a, groups_a[:1], ranks_b)


def test_paired_cli_splits_by_groups_only_for_runs_that_have_them(tmp_path, capsys):
    for name, rank, groups in (("a", 1, np.array([1, 1, 2, 3])), ("b", 2, None)):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.json").write_text("{}")
        ranks = {s: torch.full((4,), rank) for s in ("val", "test")}
        write_user_ranks(
            run / USER_RANKS_FILE,
            ranks,
            groups=None if groups is None else {s: groups for s in ("val", "test")},
        )
    assert paired_main([str(tmp_path / "a"), str(tmp_path / "b"), "--by-groups"]) == 0
    out = capsys.readouterr().out
    assert " 1 group(s):  50.0% of pairs, 2 users" in out
    assert "2+ group(s):  50.0% of pairs, 2 users" in out
    assert paired_main([str(tmp_path / "b"), str(tmp_path / "a"), "--by-groups"]) == 2
    err = capsys.readouterr().err
    assert "no user_ranks.npz with groups" in err and "--backfill" in err


def test_finished_runs_takes_comma_separated_globs(tmp_path):
    from reproduce.paired import finished_runs

    for name in ("row", "row-seed1", "row-seed2", "row-other", "unfinished"):
        (tmp_path / name).mkdir()
        if name != "unfinished":
            (tmp_path / name / "metrics.json").write_text("{}")
    seeds = finished_runs(f"{tmp_path}/row,{tmp_path}/row-seed?,{tmp_path}/unfinished")
    assert [p.name for p in seeds] == ["row", "row-seed1", "row-seed2"]  # no row-other
    with pytest.raises(ConfigError, match="no finished run dir"):
        finished_runs(f"{tmp_path}/unfinished")


def test_finished_runs_refuse_runs_that_differ_in_more_than_their_seed(tmp_path):
    """One glob can catch another row (results/x/sasrec* also matches sasrec-max-len-20):
    a model's runs must differ in their seed alone, or a comparison pools two models."""
    import json

    from reproduce.paired import finished_runs

    def run(name: str, **options):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text("{}")
        config = {"model": "sasrec", "dataset": "garden", "run_dir": name, **options}
        (tmp_path / name / "config.json").write_text(json.dumps(config))

    run("sasrec", seed=0)
    run("sasrec-seed1", seed=1, threads=2, eps=0.9)  # neither can change a SASRec result
    run("sasrec-max-len-20", seed=0, max_len=20)
    assert len(finished_runs(f"{tmp_path}/sasrec,{tmp_path}/sasrec-seed?")) == 2
    with pytest.raises(ConfigError, match=r"max_len: 10 in 2 runs, 20 in sasrec-max-len-20"):
        finished_runs(f"{tmp_path}/sasrec*")
