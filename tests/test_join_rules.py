"""Join rules as parts: every learner allocates by the rule evaluation uses, whatever
the rule; a rule's declarations drive the config; older checkpoints still load; the
``similarity`` rule (added as one class) computes what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adasplit_env.data import SyntheticConfig, load_dataset
from adasplit_env.errors import ConfigError
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import ModelConfig
from adasplit_env.model.join_rules import _LEGACY_MLP_KEYS, JOIN_RULES, SimilarityJoin
from adasplit_env.process import AllocationProcess
from agents.base import masked_logits
from agents.config import TrainConfig
from agents.trainer import Trainer

SMALL = SyntheticConfig(num_users=120, num_groups=4, items_per_group=12, max_length=14, seed=1)
LEARNERS = ("reinforce", "a2c", "ppo")


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", synthetic=SMALL)


def scoring_for(rule: str) -> str:
    """The paper's scoring where the rule can route candidates, else ``max``."""
    return "paper" if JOIN_RULES[rule].routes_candidates else "max"


def learner_probabilities(trainer: Trainer, state) -> torch.Tensor:
    """The action probabilities the learner samples from in ``state``: PPO's SB3 policy
    on the observation the Gymnasium faces show, the others' ``policy_logits``."""
    agent = trainer.agent
    if trainer.config.algo == "ppo":
        sb3_policy = agent.algorithm.policy
        observations = trainer.process.observe(state)
        with torch.no_grad():
            distribution = sb3_policy.get_distribution(
                observations, action_masks=state.action_mask.numpy()
            )
        return distribution.distribution.probs
    with torch.no_grad():
        return torch.softmax(masked_logits(agent.policy_logits(state), state), dim=1)


@pytest.mark.slow
@pytest.mark.parametrize("algo", LEARNERS)
@pytest.mark.parametrize("rule", list(JOIN_RULES))
def test_every_learner_trains_with_every_join_rule_and_allocates_by_it(
    tmp_path, dataset, algo, rule
):
    """PPO once trained an Eq. 7 MLP under ``join_logit cluster`` while evaluation
    allocated by the cluster rule: here every learner's sampling distribution must be
    the one the MDP (and so the scorer) computes, at every step of held-out episodes."""
    config = TrainConfig(
        algo=algo, epochs=1, batch_size=64, dim=16, eval_users=40, progress=False, threads=1,
        run_dir=str(tmp_path / "run"), ppo_num_envs=16, ppo_n_steps=16, join_logit=rule,
        scoring=scoring_for(rule), cluster_count=4, eps=0.6,
    )  # fmt: skip
    trainer = Trainer(config, dataset=dataset)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    results = trainer.fit()
    assert np.isfinite(results["test"]["NDCG@10"])
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)}
    assert any(n.startswith("item_embeddings") for n in changed)
    policy_weights = {n for n in before if n.startswith("policy.")}
    assert bool(policy_weights) == JOIN_RULES[rule].learned
    assert policy_weights <= changed  # a rule's own weights are trained by every learner

    process = trainer.process
    trainer.model.eval()
    state = process.reset(dataset.split.eval_samples("test", 10).subset(slice(0, 24)))
    generator = torch.Generator().manual_seed(0)
    while not bool(state.done.all()):
        with torch.no_grad():
            expected = torch.softmax(masked_logits(process.policy_logits(state), state), dim=1)
        actual = learner_probabilities(trainer, state)
        assert torch.allclose(actual, expected, atol=1e-5)
        actions = torch.multinomial(expected, 1, generator=generator)[:, 0]
        with torch.no_grad():
            state, _ = process.step(state, actions)


def test_the_config_follows_the_rules_declarations():
    assert set(JOIN_RULES) >= {"sigmoid", "linear", "affinity", "similarity", "cluster"}
    for name, rule in JOIN_RULES.items():
        options = dict(num_users=3, num_items=5, join_logit=name)
        if rule.routes_candidates:
            ModelConfig(**options)  # the paper's scoring can route its candidates
        else:
            with pytest.raises(ConfigError, match=f"join_logit {name} needs scoring max"):
                ModelConfig(**options)
        ModelConfig(**options, scoring="max")
    with pytest.raises(ConfigError, match="unknown join_logit 'nope'"):
        ModelConfig(num_users=3, num_items=5, join_logit="nope")


def test_the_similarity_rule_is_the_scaled_affinity_and_has_no_weights():
    rule = SimilarityJoin(dim=4, eps=0.3)
    assert list(rule.parameters()) == []
    items = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    groups = torch.zeros(2, 3, 4)
    groups[:, 0, 0] = 4.0
    groups[:, 1, 1] = 1.0
    logits = rule.logits(items, groups, torch.tensor([2, 1]))
    # p_i . v / sqrt(4); eps at slot h; -inf beyond
    expected = torch.tensor([[2.0, 0.0, 0.3], [0.0, 0.3, -torch.inf]])
    assert torch.equal(logits, expected)
    # a policy gradient still reaches the items and the groups through the logits
    items.requires_grad_(True)
    rule.logits(items, groups, torch.tensor([2, 1])).log_softmax(dim=1)[:, 0].sum().backward()
    assert items.grad.abs().sum() > 0


@pytest.mark.parametrize("rule", ["affinity", "cluster"])
def test_checkpoints_from_before_the_rules_were_parts_still_load(dataset, rule):
    """Affinity and cluster models held an unused Eq. 7 MLP, and the cluster model its
    clusters at the top level: such state dicts load into the parts, unchanged."""
    config = ModelConfig(
        num_users=dataset.num_users, num_items=dataset.num_items, dim=8, join_logit=rule,
        scoring=scoring_for(rule), cluster_count=3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AdaSplitModel(config)
    model.policy.fit(dataset.split)
    legacy = dict(model.state_dict())
    if rule == "cluster":
        legacy["item_clusters"] = legacy.pop("policy.item_clusters")
    for key in _LEGACY_MLP_KEYS:  # what the old policy head held, shapes and all
        legacy["policy." + key] = torch.zeros(1)
    torch.manual_seed(1)
    loaded = AdaSplitModel(config)
    loaded.load_state_dict(legacy)  # strict
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    samples = dataset.split.eval_samples("test", 10).subset(slice(0, 8))
    with torch.no_grad():
        left = AllocationProcess(model.eval()).allocate_history_greedily(samples).assignments
        right = AllocationProcess(loaded.eval()).allocate_history_greedily(samples).assignments
    assert torch.equal(left, right)
