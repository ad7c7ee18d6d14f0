"""Command-line behaviour of the data tools and the popularity floor."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_pop_floor_json_on_synthetic(tmp_path):
    out = tmp_path / "pop.json"
    result = run("eval_rec.py", "--baseline", "pop", "--dataset", "synthetic", "--json", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"test"}
    assert set(data["test"]) == {"NDCG@5", "MRR@5", "NDCG@10", "MRR@10", "HR@5", "HR@10"}
    assert "HR@5" in result.stdout.splitlines()[-3]  # the printed table's header
    assert 0 <= data["test"]["NDCG@10"] <= 100


@pytest.mark.slow
def test_random_floor_val_split(tmp_path):
    out = tmp_path / "rnd.json"
    result = run("eval_rec.py", "--baseline", "random", "--split", "val", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert set(json.loads(out.read_text())) == {"val"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval_rec.py", "--baseline", "pop", "--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["eval_rec.py", "--baseline", "pop", "--dataset", "missing/file.tsv"], "no such file"),
        (
            ["-m", "adasplit_env.data", "stats", "synthetic", "--k-core", "5000"],
            "empty after the 5000-core",
        ),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_line_exit_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.tsv"
    path.write_text("user_id\titem_id\ttimestamp\nu1\ti1\t1\nu1\ti2\n")
    result = run("-m", "adasplit_env.data", "stats", str(path))
    assert result.returncode == 2
    assert "broken.tsv, line 3" in result.stderr


# 5-core figures of ../shared/data/SOURCES.md
SOURCES_5CORE = {
    "lastfm": (1859, 2823, 71355),
    "garden": (1686, 962, 13272),
    "baby": (19445, 7050, 160792),
    "beauty": (22363, 12101, 198502),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SOURCES_5CORE))
def test_stats_match_sources_md(name, data_dir):
    result = run("-m", "adasplit_env.data", "stats", name, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("5-core"))
    users, items, inter = (int(x.replace(",", "")) for x in row.split()[1:4])
    assert (users, items, inter) == SOURCES_5CORE[name]


@pytest.mark.slow
def test_format_flag_reads_a_file_whose_name_says_nothing(tmp_path):
    rows = [f"u{u},i{(u + k) % 9},5.0,{k}" for u in range(12) for k in range(7)]
    path = tmp_path / "ratings.dat"
    path.write_text("\n".join(rows) + "\n")
    refused = run("eval_rec.py", "--baseline", "pop", "--dataset", str(path))
    assert refused.returncode == 2 and "format" in refused.stderr
    args = ["--baseline", "pop", "--dataset", str(path), "--format", "amazon-csv"]
    assert run("eval_rec.py", *args).returncode == 0
    trained = run(
        "train_agent.py", "--dataset", str(path), "--format", "amazon-csv", "--epochs", "1",
        "--dim", "8", "--threads", "1", "--progress", "false", "--run-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    # the checkpoint remembers the format, so eval_rec.py reads the same file again
    again = run("eval_rec.py", "--checkpoint", str(tmp_path / "r" / "best.pt"))
    assert again.returncode == 0, again.stderr


def test_help_says_each_default_once():
    import eval_rec
    import train_agent

    for parser in (train_agent.build_parser(), eval_rec.build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            text = formatter._expand_help(action) if action.help else ""
            assert text.lower().count("default") <= 1, text
    assert "(default: 5)" in train_agent.build_parser().format_help()  # still added elsewhere
