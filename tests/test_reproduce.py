"""The reproduction command: which runs a target needs, reuse of finished run
dirs, and tables/figures read from them."""

from __future__ import annotations

import json

import pytest
import torch

from adasplit_env.evaluation import USER_RANKS_FILE, write_user_ranks
from reproduce import report
from reproduce.__main__ import main
from reproduce.experiments import (
    comparable,
    expected_options,
    experiments,
    with_finished_seeds,
)
from reproduce.runner import _train_command, run_state

SMALL = {
    "dataset": "synthetic",
    "epochs": 1,
    "patience": 0,
    "max_len": 5,
    "dim": 16,
    "eval_users": 200,
    "eps": 0.5,
    "beta": 0.1,
    "lambda_o": 0.1,
    "penalty": 1.1,
    "lr": 0.001,
    "batch_size": 256,
}


def write_config(folder, **changes):
    folder.mkdir(exist_ok=True)
    (folder / "synthetic.yaml").write_text(json.dumps({**SMALL, **changes}))
    return folder


def test_ablation_rows_reuse_the_tuned_run(tmp_path):
    configs = write_config(tmp_path / "configs")
    rows = experiments("table3", "synthetic", configs)
    assert [r.name for r in rows] == ["search/default", "updater-lstm", "updater-mean"]
    assert rows[1].overrides == {"group_updater": "lstm"}
    write_config(configs, group_updater="lstm", eps=0.3)
    rows = experiments("table3", "synthetic", configs)
    # the tuned config is no longer a search candidate, and the tuned row moved
    assert [r.name for r in rows] == ["updater-attn_gru", "adasplit", "updater-mean"]
    lengths = experiments("figure5", "synthetic", configs)
    assert [r.variant for r in lengths] == [5, 10, 20, 30, 40]
    assert lengths[0].name == "adasplit"  # max_len 5 is the tuned value here


def test_comparable_keeps_only_what_changes_a_result():
    base = {"dataset": "garden", "eps": 0.5}
    assert comparable(base) == comparable({**base, "threads": 7, "run_dir": "x", "progress": False})
    assert comparable(base) != comparable({**base, "eps": 0.3})
    baseline = {"dataset": "garden", "model": "sasrec"}
    assert comparable(baseline) == comparable({**baseline, "eps": 0.3, "beta": 1.0})
    assert comparable(baseline) != comparable({**baseline, "lr": 0.01})


@pytest.mark.slow
def test_table2_runs_once_and_the_document_shows_the_run_dirs_numbers(tmp_path, capsys):
    configs = write_config(tmp_path / "configs")
    results = tmp_path / "results"
    document = tmp_path / "REPORT.md"
    document.write_text(
        "# report\n<!-- reproduce:table2 -->\nold\n<!-- /reproduce:table2 -->\nend\n"
    )
    argv = [
        "table2",
        "--datasets",
        "synthetic",
        "--results",
        str(results),
        "--configs",
        str(configs),
        "--seeds",
        "1",
    ]
    assert main([*argv, "--document", str(document), "--threads", "1"]) == 0
    names = ["search/default", "sasrec", "gru4rec", "pop"]
    text = document.read_text()
    assert "old" not in text and text.endswith("<!-- /reproduce:table2 -->\nend\n")
    for name in names:
        metrics = json.loads((results / "synthetic" / name / "metrics.json").read_text())
        cells = " | ".join(f"{metrics['test'][k]:.2f}" for k in report.METRICS)
        assert cells in text, name
    assert (results / "table2.md").read_text().strip() in text
    adasplit = json.loads((results / "synthetic" / "search/default" / "metrics.json").read_text())
    assert 1.0 <= adasplit["groups_per_user"] <= 6.0  # max_groups = max_len + 1
    assert f"| {adasplit['groups_per_user']:.2f} |" in text
    stamps = {n: (results / "synthetic" / n / "metrics.json").stat().st_mtime_ns for n in names}
    capsys.readouterr()

    assert main([*argv, "--document", str(document)]) == 0  # nothing left to run
    assert "training" not in capsys.readouterr().out
    assert stamps == {
        n: (results / "synthetic" / n / "metrics.json").stat().st_mtime_ns for n in names
    }

    write_config(configs, dim=8)  # a budget key: every trained run is out of date
    states = {s.experiment.name: s.status for s in map(
        lambda e: run_state(e, results, configs), experiments("table2", "synthetic", configs, 1)
    )}  # fmt: skip
    assert states == {
        "search/default": "stale",
        "sasrec": "stale",
        "gru4rec": "stale",
        "pop": "finished",
    }
    capsys.readouterr()
    assert main([*argv, "--document", str(document), "--no-train"]) == 0
    printed, text = capsys.readouterr().out, document.read_text()
    for name in ("search/default", "sasrec", "gru4rec"):  # their old numbers are not shown
        assert (
            f"stale, left out of the tables (options changed since it ran): {results / 'synthetic' / name}"
            in printed
        )
        metrics = json.loads((results / "synthetic" / name / "metrics.json").read_text())
        assert " | ".join(f"{metrics['test'][k]:.2f}" for k in report.METRICS) not in text
    assert "| synthetic | SASRec | not run" in text
    write_config(configs, eps=0.3)  # an AdaSplit option: the baselines stay valid
    rows = experiments("table2", "synthetic", configs, 1)
    assert [run_state(e, results, configs).status for e in rows] == [
        "missing", "finished", "finished", "finished"
    ]  # fmt: skip


def test_seeds_are_run_dirs_of_their_own_and_cells_their_mean(tmp_path):
    configs = write_config(tmp_path / "configs")
    runs = experiments("table2", "synthetic", configs)  # table2: 3 seeds unless told
    sasrec = [e for e in runs if e.label == "SASRec"]
    assert [e.run_dir(tmp_path).name for e in sasrec] == ["sasrec", "sasrec-seed1", "sasrec-seed2"]
    assert [comparable(run_state(e, tmp_path, configs).options)["seed"] for e in sasrec] == [
        0, 1, 2
    ]  # fmt: skip
    assert [e.name for e in runs if e.label == "Popularity"] == ["pop"]  # deterministic: one
    for seed, value in zip((0, 1), (4.0, 6.0)):  # seed 2 left unrun
        metrics = {k: value for k in report.METRICS}
        sasrec[seed].run_dir(tmp_path).mkdir(parents=True)
        (sasrec[seed].run_dir(tmp_path) / "metrics.json").write_text(
            json.dumps({"val": metrics, "test": metrics, "epochs": 9, "best_epoch": seed + 1})
        )
    table = report.metric_table("table2", {"synthetic": runs}, tmp_path)
    cells = " | ".join(["5.00 ± 1.41"] * len(report.METRICS))
    assert f"| synthetic | SASRec | {cells} | 5.00 ± 1.41 | 2/3 | 9 (1), 9 (2) | – |" in table
    assert "| synthetic | GRU4Rec | not run" in table
    # seeds run beyond those asked for (--seeds 6) join their row once finished
    for seed, value in ((2, 5.0), (3, 7.0), (5, 9.0)):  # seed 4 missing: 5 is not read
        run = sasrec[0].with_seed(seed)
        run.run_dir(tmp_path).mkdir(parents=True, exist_ok=True)
        metrics = {k: value for k in report.METRICS}
        (run.run_dir(tmp_path) / "metrics.json").write_text(
            json.dumps({"val": metrics, "test": metrics, "epochs": 9, "best_epoch": seed + 1})
        )
    extended = with_finished_seeds(runs, tmp_path)
    assert [e.seed for e in extended if e.label == "SASRec"] == [0, 1, 2, 3]
    assert [e.seed for e in extended if e.label == "GRU4Rec"] == [0, 1, 2]
    table = report.metric_table("table2", {"synthetic": extended}, tmp_path)
    assert "| synthetic | SASRec | 5.50 ± 1.29 |" in table and "| 4/4 |" in table
    with pytest.raises(Exception, match="seeds must be >= 1"):
        experiments("table2", "synthetic", configs, 0)


def test_plus_tables_show_the_group_coherence_of_the_runs_that_measured_it(tmp_path):
    configs = write_config(tmp_path / "configs")
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**SMALL, "scoring": "max"}))
    runs = experiments("plus-ablations", "synthetic", configs, seeds=3)
    cluster = [e for e in runs if e.variant == "join-cluster"]
    metrics = {k: 1.0 for k in report.METRICS}
    # pooled over split users: (30 x 0.5 + 10 x 0.1) / 40 = 0.4; a seed splitting no one adds
    # its users to the share only (40 of 300)
    for run, gap, split in zip(cluster, (0.5, 0.1, float("nan")), (30, 10, 0)):
        run.run_dir(tmp_path).mkdir(parents=True)
        (run.run_dir(tmp_path) / "metrics.json").write_text(
            json.dumps({"val": metrics, "test": metrics, "epochs": 3, "best_epoch": 2})
        )
        coherence = {
            "coherence": {
                "split": "test",
                "split_users": split,
                "evaluated_users": 100,
                "over_contiguous": [gap, gap, gap],
            }
        }
        (run.run_dir(tmp_path) / report.COHERENCE_FILE).write_text(json.dumps(coherence))
    table = report.metric_table("plus-ablations", {"synthetic": runs}, tmp_path)
    assert "coherence over time runs |" in table.splitlines()[0]
    (line,) = [row for row in table.splitlines() if "co-occurrence clusters" in row]
    assert line.endswith("| 3/3 | 3 (2), 3 (2), 3 (2) | – | – | +0.400 (13% split) |")
    assert all(row.endswith("| – |") for row in table.splitlines()[2:] if row != line)
    assert "coherence" not in report.metric_table("table2", {"synthetic": runs}, tmp_path)


def test_gap_table_puts_adasplit_and_adasplit_plus_beside_the_paper_and_sasrec(tmp_path):
    configs = write_config(tmp_path / "configs")
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**SMALL, "scoring": "max"}))
    runs = experiments("table2", "synthetic", configs, 2)
    values = {"AdaSplit": (30.0, 34.0), "AdaSplit+": (60.0, 62.0), "SASRec": (40.0, 40.0)}
    for experiment in runs:
        if experiment.label not in values:
            continue
        metrics = {k: values[experiment.label][experiment.seed] for k in report.METRICS}
        experiment.run_dir(tmp_path).mkdir(parents=True)
        (experiment.run_dir(tmp_path) / "metrics.json").write_text(
            json.dumps({"val": metrics, "test": metrics, "epochs": 3, "best_epoch": 2})
        )
        # per-user ranks: AdaSplit+ ranks every target first, SASRec second; AdaSplit saved none
        if experiment.label != "AdaSplit":
            rank = 1 if experiment.label == "AdaSplit+" else 2
            write_user_ranks(
                experiment.run_dir(tmp_path) / USER_RANKS_FILE,
                {split: torch.full((4,), rank) for split in ("val", "test")},
            )
    table = report.gap_table({"synthetic": runs}, tmp_path)
    # synthetic has no paper row: the paper columns are empty; the paired difference
    # over users is 100 - 100 / log2(3), the same for every user, so its interval is a point
    assert "| synthetic | AdaSplit | 32.00 | – | – | 40.00 | 0.80 | – |" in table
    assert (
        "| synthetic | AdaSplit+ | 61.00 | – | – | 40.00 | 1.52 | +36.91 [+36.91, +36.91] |"
        in table
    )
    (runs[0].run_dir(tmp_path) / "metrics.json").unlink()  # AdaSplit: one seed of two left
    assert "| synthetic | AdaSplit | 34.00 (1/2 seeds) | – | – | 40.00 | 0.85 | – |" in (
        report.gap_table({"synthetic": runs}, tmp_path)
    )
    stale = frozenset({e.run_dir(tmp_path) for e in runs if e.label == "AdaSplit+"})
    assert "| synthetic | AdaSplit+ | – | – | – | 40.00 | – | – |" in report.gap_table(
        {"synthetic": runs}, tmp_path, stale
    )


def test_a_partial_run_is_resumed(tmp_path):
    configs = write_config(tmp_path / "configs")
    (experiment,) = [
        e for e in experiments("table2", "synthetic", configs) if e.name == "sasrec" and not e.seed
    ]
    run_dir = experiment.run_dir(tmp_path)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({**SMALL, "model": "sasrec", "threads": 3}))
    (run_dir / "last.pt").write_bytes(b"")
    state = run_state(experiment, tmp_path, configs)
    assert state.status == "partial"
    command = _train_command(state, None, threads=1)
    assert command[command.index("--resume") + 1] == str(run_dir)


@pytest.mark.slow
def test_figure5_table_and_png_from_run_dirs(tmp_path):
    configs = write_config(tmp_path / "configs")
    runs = {"synthetic": experiments("figure5", "synthetic", configs)}
    for index, experiment in enumerate(runs["synthetic"][:3]):  # two lengths left unrun
        metrics = {k: 10.0 + index for k in report.METRICS}
        experiment.run_dir(tmp_path).mkdir(parents=True)
        (experiment.run_dir(tmp_path) / "metrics.json").write_text(
            json.dumps({"val": metrics, "test": metrics, "epochs": 3, "best_epoch": 2})
        )
    table = report.metric_table("figure5", runs, tmp_path)
    assert (
        "| synthetic | l = 20 | 12.00 | 12.00 | 12.00 | 12.00 | 12.00 | 1/1 | 3 (2) | – |" in table
    )
    assert "| synthetic | l = 40 | not run |" in table
    png = report.figure("figure5", runs, tmp_path, tmp_path / "figure5.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["table9"])
    assert exit_info.value.code == 2
    code = main(["table2", "--datasets", "nosuch", "--configs", str(tmp_path), "--dry-run"])
    assert code == 2
    assert "no config for dataset 'nosuch'" in capsys.readouterr().err


def test_variants_trains_only_the_named_rows(tmp_path, capsys):
    configs = write_config(tmp_path / "configs")
    argv = ["table3", "--datasets", "synthetic", "--configs", str(configs)]
    argv += ["--results", str(tmp_path / "results"), "--dry-run"]
    assert main([*argv, "--variants", "lstm"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and "variant lstm)" in listed[0]
    assert main([*argv, "--variants", "lstm", "nosuch"]) == 2
    error = capsys.readouterr().err
    assert "no row of the plan has variant nosuch" in error and "lstm" in error


def test_plus_rows_add_one_option_each_on_top_of_the_tuned_run(tmp_path):
    from reproduce.experiments import PLUS_STEPS

    configs = write_config(tmp_path / "configs")
    rows = experiments("plus", "synthetic", configs, seeds=1)
    assert rows[0].name == "search/default"  # the tuned paper model is the first control
    assert [r.name for r in rows[1:-1]] == [f"plus/{step}" for step, _, _, _ in PLUS_STEPS]
    assert rows[-1].name == "sasrec"  # the sequence model to beat, Table 2's run
    by_step = {None: rows[0], **{step: row for row, (step, *_) in zip(rows[1:], PLUS_STEPS)}}
    for row, (_, _, options, base) in zip(rows[1:-1], PLUS_STEPS):
        assert row.overrides == {**by_step[base].overrides, **options}
    assert len(experiments("plus", "synthetic", configs)) == 3 * len(rows)  # 3 seeds by default


def test_baseline_tuning_rows_and_their_table(tmp_path):
    from reproduce.experiments import BASELINE_MOVES

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "garden.yaml").write_text(json.dumps({**SMALL, "dataset": "garden"}))
    runs = experiments("search", "garden", configs)
    baselines = [e for e in runs if "model" in e.overrides]
    assert [e.name for e in baselines] == ["sasrec", "gru4rec"] + [
        f"baseline-search/{name}" for name in BASELINE_MOVES
    ]
    assert experiments("search", "synthetic", write_config(configs)) == [
        e for e in experiments("search", "synthetic", configs) if "model" not in e.overrides
    ]  # tuned on Garden only
    metrics = {k: 7.0 for k in report.METRICS}
    baselines[2].run_dir(tmp_path).mkdir(parents=True)
    (baselines[2].run_dir(tmp_path) / "metrics.json").write_text(
        json.dumps({"val": metrics, "test": metrics, "epochs": 5, "best_epoch": 4})
    )
    table = report.baseline_table({"garden": runs}, tmp_path)
    assert "| garden | sasrec (RecBole defaults) | sasrec | 0.5 | 0.001 | not run |" in table
    assert "| garden | sasrec-dropout-0.2 | sasrec | 0.2 | 0.001 | 7.00 | 7.00 | 5 (4) |" in table
    assert (
        "eps" not in report.search_table({"garden": baselines}, tmp_path, configs).split("\n")[2:]
    )


def test_table2_has_an_adasplit_plus_row_when_a_preset_exists(tmp_path):
    configs = write_config(tmp_path / "configs")
    assert "AdaSplit+" not in [e.label for e in experiments("table2", "synthetic", configs, 1)]
    preset = configs / "synthetic-plus.yaml"
    preset.write_text(json.dumps({**SMALL, "group_start": "zero", "readout": "sasrec"}))
    rows = experiments("table2", "synthetic", configs, 1)
    plus = [e for e in rows if e.label == "AdaSplit+"]
    assert [e.name for e in plus] == ["plus/readout-sasrec"]  # the AdaSplit+ step's runs
    preset.write_text(json.dumps({**SMALL, "group_start": "learned"}))
    (plus,) = [e for e in experiments("table2", "synthetic", configs, 1) if e.label == "AdaSplit+"]
    assert plus.name == "adasplit-plus"
    assert comparable(run_state(plus, tmp_path, configs).options)["group_start"] == "learned"


def test_plus_ablations_swap_one_part_of_the_preset(tmp_path, monkeypatch):
    from reproduce.experiments import INTEREST_NOISE

    monkeypatch.delitem(INTEREST_NOISE, "synthetic")  # other data: their own test
    configs = write_config(tmp_path / "configs")
    assert experiments("plus-ablations", "synthetic", configs) == []  # no preset, no rows
    preset = {**SMALL, "group_start": "zero", "readout": "sasrec"}
    (configs / "synthetic-plus.yaml").write_text(json.dumps(preset))
    assert len(experiments("plus-ablations", "synthetic", configs)) == 3 * 10  # 3 seeds a row
    rows = experiments("plus-ablations", "synthetic", configs, seeds=1)
    assert rows[0].name == "plus/readout-sasrec"  # the preset's own run, reused
    chosen = comparable(run_state(rows[0], tmp_path, configs).options)
    swapped = {}
    for row in rows[1:]:
        options = comparable(run_state(row, tmp_path, configs).options)
        changed = {k for k in options if options[k] != chosen[k]}
        assert len(changed) == 1, row.name  # exactly one part differs from the preset
        (key,) = changed
        swapped.setdefault(key, set()).add(options[key])
    assert swapped == {
        "group_updater": {"lstm", "mean"},
        "curriculum": {"linear", "keep", "none"},  # exponential is the preset's
        "encoder": {"causal", "none"},
        "max_groups": {1},  # the one-group control
        "reinforce_baseline": {"greedy"},  # the self-critical learner
    }


def test_a_max_scoring_preset_gets_the_cluster_allocator_row(tmp_path):
    configs = write_config(tmp_path / "configs")
    preset = {**SMALL, "group_start": "zero", "scoring": "max"}
    (configs / "synthetic-plus.yaml").write_text(json.dumps(preset))
    rows = {r.variant: r for r in experiments("plus-ablations", "synthetic", configs, seeds=1)}
    options = comparable(run_state(rows["join-cluster"], tmp_path, configs).options)
    chosen = comparable(run_state(rows["adasplit+"], tmp_path, configs).options)
    assert {k for k in options if options[k] != chosen[k]} == {"join_logit"}
    assert options["join_logit"] == "cluster"
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**preset, "scoring": "paper"}))
    assert "join-cluster" not in {
        r.variant for r in experiments("plus-ablations", "synthetic", configs, 1)
    }


def test_a_max_scoring_preset_gets_the_group_encoder_rows(tmp_path):
    configs = write_config(tmp_path / "configs")
    preset = {**SMALL, "group_start": "zero", "scoring": "max", "readout": "sasrec"}
    (configs / "synthetic-plus.yaml").write_text(json.dumps(preset))
    rows = {r.variant: r for r in experiments("plus-ablations", "synthetic", configs, seeds=1)}
    chosen = comparable(run_state(rows["adasplit+"], tmp_path, configs).options)
    changed = {
        variant: {
            key: value
            for key, value in comparable(
                run_state(rows[variant], tmp_path, configs).options
            ).items()
            if value != chosen[key]
        }
        for variant in rows
        if variant.startswith("group-encoder")
    }
    encoder = {"group_repr": "encoder", "readout": "group"}
    beside = {"group_repr": "encoder"}  # the preset's readout is already sasrec
    assert changed == {
        "group-encoder": encoder,
        "group-encoder-cluster": {**encoder, "join_logit": "cluster"},
        "group-encoder-max-groups-1": {**encoder, "max_groups": 1},
        "group-encoder-beside": beside,
        "group-encoder-beside-cluster": {**beside, "join_logit": "cluster"},
        "group-encoder-beside-max-groups-1": {**beside, "max_groups": 1},
        "group-encoder-attend-cluster": {**beside, "join_logit": "cluster", "scoring": "attend"},
        "group-encoder-greedy": {**encoder, "reinforce_baseline": "greedy"},
    }
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**preset, "scoring": "paper"}))
    assert "group-encoder" not in {
        r.variant for r in experiments("plus-ablations", "synthetic", configs, 1)
    }


def test_long_history_ablations_change_only_the_history_length(tmp_path, monkeypatch):
    from reproduce.experiments import INTEREST_NOISE, LONG_HISTORY

    monkeypatch.delitem(INTEREST_NOISE, "synthetic")  # rows of their own, after these

    configs = write_config(tmp_path / "configs")
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**SMALL, "group_start": "zero"}))
    without = experiments("plus-ablations", "synthetic", configs, seeds=1)
    monkeypatch.setitem(LONG_HISTORY, "synthetic", (8, 5, 9))  # 5 is the preset's own l
    rows = experiments("plus-ablations", "synthetic", configs, seeds=1)
    assert rows[: len(without)] == without
    added = {row.variant: row for row in rows[len(without) :]}
    assert list(added) == [
        "max-len-8", "max-len-8-max-groups-1", "sasrec", "sasrec-max-len-8",
        "max-len-9", "max-len-9-max-groups-1", "sasrec-max-len-9",
    ]  # fmt: skip
    preset = comparable(run_state(rows[0], tmp_path, configs).options)

    def changed(variant, reference):
        options = comparable(run_state(added[variant], tmp_path, configs).options)
        return {k: options[k] for k in options if options[k] != reference.get(k)}

    assert changed("max-len-8", preset) == {"max_len": 8}
    assert changed("max-len-8-max-groups-1", preset) == {"max_len": 8, "max_groups": 1}
    assert added["sasrec"].name == "sasrec"  # Table 2's runs, at the preset's l
    sasrec = comparable(run_state(added["sasrec"], tmp_path, configs).options)
    assert sasrec["model"] == "sasrec" and sasrec["max_len"] == 5
    assert changed("sasrec-max-len-8", sasrec) == {"max_len": 8}
    assert changed("max-len-9", preset) == {"max_len": 9}
    assert changed("sasrec-max-len-9", sasrec) == {"max_len": 9}
    # a preset already at a length gets no rows for it
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**SMALL, "max_len": 8}))
    names = [r.name for r in experiments("plus-ablations", "synthetic", configs, 1)]
    assert not any("max-len-8" in name for name in names)
    assert any("max-len-9" in name for name in names)


def test_plus_ablation_equal_to_a_plus_step_reads_that_steps_runs(tmp_path):
    configs = write_config(tmp_path / "configs")
    (affinity,) = [
        e for e in experiments("plus", "synthetic", configs, 1) if e.variant == "affinity"
    ]
    preset = {k: v for k, v in expected_options(affinity, configs).items() if k != "seed"}
    (configs / "synthetic-plus.yaml").write_text(json.dumps(preset))
    rows = {row.variant: row.name for row in experiments("plus-ablations", "synthetic", configs, 1)}
    assert rows["adasplit+"] == "plus/affinity"
    assert rows["max-groups-1"] == "plus/affinity-single"  # the plus step's control, no copy
    assert rows["updater-lstm"] == "plus-ablations/affinity/updater-lstm"


def test_config_reads_are_parsed_once_but_see_every_edit(tmp_path):
    from reproduce.experiments import tuned_values

    configs = write_config(tmp_path / "configs", eps=0.5)
    assert tuned_values(configs, "synthetic")["eps"] == 0.5
    write_config(tmp_path / "configs", eps=0.7)  # same size, at once: still re-read
    assert tuned_values(configs, "synthetic")["eps"] == 0.7
    tuned_values(configs, "synthetic")["eps"] = 0.9  # callers get a copy
    assert tuned_values(configs, "synthetic")["eps"] == 0.7


def test_interest_noise_rows_change_only_the_data(tmp_path):
    configs = write_config(tmp_path / "configs")
    (configs / "synthetic-plus.yaml").write_text(json.dumps({**SMALL, "group_start": "zero"}))
    rows = {r.variant: r for r in experiments("plus-ablations", "synthetic", configs, seeds=1)}
    preset = comparable(run_state(rows["adasplit+"], tmp_path, configs).options)
    (sasrec_row,) = [
        r for r in experiments("table2", "synthetic", configs, 1) if r.variant == "sasrec"
    ]
    sasrec = comparable(run_state(sasrec_row, tmp_path, configs).options)

    def changed(variant, reference):
        options = comparable(run_state(rows[variant], tmp_path, configs).options)
        return {k: options[k] for k in options if options[k] != reference.get(k)}

    for level in (0.5, 1.0):
        noisy = {"dataset": f"synthetic:noise={level}"}
        assert changed(f"noise-{level}", preset) == noisy
        assert changed(f"noise-{level}-max-groups-1", preset) == {**noisy, "max_groups": 1}
        assert changed(f"sasrec-noise-{level}", sasrec) == noisy
        assert rows[f"sasrec-noise-{level}"].name == f"sasrec-noise-{level}"
    assert not any(
        "noise" in r.variant for r in experiments("plus-ablations", "garden", configs, seeds=1)
    )


def test_a_narrower_call_never_writes_a_smaller_table(tmp_path):
    configs = write_config(tmp_path / "configs")
    (configs / "garden.yaml").write_text((configs / "synthetic.yaml").read_text())
    results = tmp_path / "results"
    sasrec = next(e for e in experiments("table2", "garden", configs) if e.label == "SASRec")
    metrics = {k: 4.0 for k in report.METRICS}
    sasrec.run_dir(results).mkdir(parents=True)
    (sasrec.run_dir(results) / "metrics.json").write_text(
        json.dumps(
            {"val": metrics, "test": metrics, "epochs": 9, "best_epoch": 3, "seconds_per_epoch": 1}
        )
    )
    document = tmp_path / "REPORT.md"
    document.write_text("<!-- reproduce:table2 -->\n<!-- /reproduce:table2 -->\n")
    argv = ["table2", "--datasets", "synthetic", "--seeds", "1", "--no-train"]
    argv += ["--results", str(results), "--configs", str(configs), "--document", str(document)]
    assert main(argv) == 0
    text = document.read_text()
    # garden, not asked for, keeps its rows; each row plans Table 2's three seeds
    assert "| garden | SASRec | 4.00 (5.33) |" in text and "| 1/3 | 9 (3) |" in text
    assert "| synthetic | SASRec | not run" in text


def test_sections_written_together_are_all_kept(tmp_path):
    import threading

    names = [f"s{i}" for i in range(8)]
    document = tmp_path / "REPORT.md"
    document.write_text(
        "".join(f"<!-- reproduce:{n} -->\n<!-- /reproduce:{n} -->\n" for n in names)
    )
    threads = [
        threading.Thread(target=report.replace_section, args=(document, n, f"body of {n}" * 2000))
        for n in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = document.read_text()
    assert all(f"body of {n}" in text for n in names)
