"""One declaration per option: the training config nests the model's, the reward's and
the learners' sections; the command line, the files and ``config.json`` stay flat."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from adasplit_env.errors import ConfigError
from adasplit_env.model.config import ModelConfig, ModelOptions, RewardConfig
from agents.config import LearnerConfig, TrainConfig, option_fields, option_groups

REPO = Path(__file__).resolve().parents[1]


def test_every_option_is_declared_once_with_its_help():
    names = [spec.name for spec in option_fields()]
    assert len(names) == len(set(names))
    assert all(spec.metadata.get("help") for spec in option_fields())
    groups = option_groups()
    assert [spec.name for spec in groups["model_options"]] == [
        spec.name for spec in fields(ModelOptions)
    ]
    # the model's config is those same fields plus the dataset's sizes, not a copy
    assert {spec.name for spec in fields(ModelConfig)} == {
        *(spec.name for spec in fields(ModelOptions)),
        "num_users",
        "num_items",
    }
    assert issubclass(ModelConfig, ModelOptions)


def test_options_are_routed_to_their_sections():
    config = TrainConfig(dim=8, penalty=0.5, beta=0.3, epochs=3)
    assert (config.model_options.dim, config.reward.penalty) == (8, 0.5)
    assert (config.learner.beta, config.epochs) == (0.3, 3)
    assert isinstance(config.learner, LearnerConfig)
    changed = replace(config, max_len=6, lambda_d=0.5)
    assert (changed.model_options.max_len, changed.model_options.dim) == (6, 8)
    assert (changed.learner.lambda_d, changed.learner.beta) == (0.5, 0.3)
    changed.learner.beta = 1.0  # a learner's section is its config's own
    assert config.learner.beta == 0.3
    with pytest.raises(TypeError, match="unexpected option 'dimension'"):
        TrainConfig(dimension=8)


def test_files_are_flat_or_nested_and_checked():
    flat = TrainConfig.from_dict({"join-logit": "affinity", "likelihood_reward": 1, "beta": 0.2})
    nested = TrainConfig.from_dict(
        {"model_options": {"join_logit": "affinity"}, "reward": {"likelihood-reward": 1.0},
         "learner": {"beta": 0.2}}
    )  # fmt: skip
    assert flat == nested
    assert flat.reward.likelihood_reward == 1.0 and isinstance(flat.reward.likelihood_reward, float)
    assert TrainConfig.from_dict(flat.to_dict()) == flat
    with pytest.raises(ConfigError, match="--join-logit: 'mlp' is not one of"):
        TrainConfig.from_dict({"join_logit": "mlp"})
    with pytest.raises(ConfigError, match="--ppo-epochs takes a int"):
        TrainConfig.from_dict({"ppo_epochs": 2.5})
    with pytest.raises(ConfigError, match="unknown option"):
        TrainConfig.from_dict({"reward": {"pennalty": 1.0}})


def test_the_committed_run_dirs_configs_read_as_they_were_written():
    """config.json of runs written when the options were one flat dataclass."""
    paths = sorted(REPO.glob("results/*/plus/*/config.json"))[:20]
    paths += sorted(REPO.glob("results/*/sasrec/config.json"))
    assert paths
    for path in paths:
        saved = json.loads(path.read_text())
        read = TrainConfig.from_dict(saved).to_dict()
        # options added since a run was written read as their defaults
        assert {name: read[name] for name in saved} == saved, path


def test_checkpoints_reward_keys_of_before_load():
    old = RewardConfig.from_dict({"likelihood_weight": 1.0, "allocation_weight": 0.0})
    assert old == RewardConfig(likelihood_reward=1.0, allocation_reward_weight=0.0)


def test_the_cli_lists_the_sections_options_under_their_headings():
    from train_agent import build_parser, parse_config

    text = build_parser().format_help()
    headings = ("\nthe model (", "\nthe reward (", "\nthe learners (")
    model, reward, learner = (text.index(heading) for heading in headings)
    described = text[text.index("\noptions:") :]  # after the usage line, which lists all
    position = text.index
    assert model < position("\n  --join-logit", model) < reward < learner
    assert (
        reward < position("\n  --penalty", reward) < learner < position("\n  --ppo-clip", learner)
    )
    assert "\n  --join-logit" not in described[: described.index("\nthe model (")]
    config, _ = parse_config(["--join-logit", "cluster", "--scoring", "max", "--beta", "0.5"])
    assert (config.model_options.join_logit, config.learner.beta) == ("cluster", 0.5)
