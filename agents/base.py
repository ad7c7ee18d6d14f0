"""What every learner shares: the agent interface and episode rollouts.

An :class:`Agent` is a ``torch.nn.Module`` that owns (a reference to) the
recommender and any heads of its own. The trainer (:mod:`agents.trainer`)
gives it mini-batches of samples and optimises whatever :meth:`Agent.loss`
returns; agents never step the dynamics themselves but call
:func:`run_episodes`, which drives the one :class:`AllocationProcess`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from adasplit_env.constants import upper_pairs
from adasplit_env.data.split import Samples
from adasplit_env.model.config import RewardConfig
from adasplit_env.process import AllocationProcess, AllocationState
from adasplit_env.rewards import REWARD_TERMS, total_reward
from adasplit_env.scoring import rank_scores, score_all_items

# What every learner logs per update (Rollout.summary), so that curves overlay.
EPISODE_TAGS = (
    "charts/episode_return",
    *(f"rewards/{term}" for term in REWARD_TERMS),
    "groups/per_episode",
    "groups/creation_rate",
    "groups/pair_cosine",
    "policy/entropy",
)


def mean_pair_cosine(state: AllocationState) -> float:
    """Mean |cos(p_i, p_j)| over the pairs of groups each episode ended with: Eq. 15's
    orthogonality term without the embedding norms (0: orthogonal groups, 1: parallel),
    over the episodes with two or more groups; NaN when none has."""
    reprs = torch.nn.functional.normalize(state.group_reprs.detach(), dim=-1)
    mask = state.group_mask
    cosines = (reprs @ reprs.transpose(1, 2)).abs()
    size = reprs.shape[1]
    pairs = mask[:, :, None] & mask[:, None, :] & upper_pairs(size, reprs.device)
    count = pairs.sum(dim=(1, 2))
    several = count > 0
    if not bool(several.any()):
        return float("nan")
    per_episode = (cosines * pairs).sum(dim=(1, 2))[several] / count[several]
    return per_episode.mean().item()


@dataclass
class Rollout:
    """B episodes run to the end; (B, T) tensors over the steps taken.

    ``active[b, t]`` is False once episode b is over (its entries are zero).
    ``target_group_repr`` is p_a chosen for the target (Eq. 20);
    ``history_group_reprs`` / ``history_group_mask`` the groups the history
    built, as the target step saw them (what the ``max`` scoring reads).
    """

    actions: torch.Tensor
    log_probs: torch.Tensor
    entropies: torch.Tensor
    rewards: torch.Tensor
    reward_terms: dict[str, torch.Tensor]
    created: torch.Tensor
    active: torch.Tensor
    target_group_repr: torch.Tensor
    final_state: AllocationState
    values: torch.Tensor | None = None  # (B, T) from value_fn, when given
    # (B,) log p(target) with its graph, when the likelihood reward computed it
    target_log_likelihood: torch.Tensor | None = None

    @property
    def target_steps(self) -> torch.Tensor:
        """(B,) the step (column) at which each episode allocated its target: its last."""
        return self.active.long().sum(dim=1) - 1

    @cached_property  # read by L_seq and by history_group_reprs: computed once
    def history_group_mask(self) -> torch.Tensor:
        """(B, G) the groups before the target step: the final ones less a group the
        target step opened (the target step changes nothing else)."""
        final = self.final_state
        steps = self.target_steps
        rows = torch.arange(final.batch_size, device=steps.device)
        opened_at_target = self.created[rows, steps]
        slots = torch.arange(final.max_groups, device=steps.device)
        last_slot = slots[None, :] == (final.num_groups - 1)[:, None]
        return final.group_mask & ~(last_slot & opened_at_target[:, None])

    @property
    def history_group_reprs(self) -> torch.Tensor:
        """(B, G, d) the groups before the target step, zero in the other slots."""
        return self.final_state.group_reprs * self.history_group_mask[..., None]

    def with_terms(self, terms: dict[str, torch.Tensor], config: RewardConfig) -> Rollout:
        """This rollout with reward terms (B, T) by step that its steps left out (the
        parallel path's replay computes them), added to its rewards with ``config``'s
        weights, as :meth:`AllocationProcess.step` adds them."""
        zero = torch.zeros_like(self.rewards)
        added = total_reward(config, *(terms.get(term, zero) for term in REWARD_TERMS))
        return replace(
            self, rewards=self.rewards + added, reward_terms={**self.reward_terms, **terms}
        )

    def with_target_log_likelihood(
        self, log_likelihood: torch.Tensor, config: RewardConfig
    ) -> Rollout:
        """This rollout (run with ``score_target=False``) with its likelihood reward:
        ``log_likelihood`` (B,) at each episode's target step (:meth:`with_terms`)."""
        steps = self.target_steps
        at_target = torch.arange(self.active.shape[1], device=steps.device) == steps[:, None]
        likelihood = torch.where(at_target, log_likelihood.detach()[:, None], 0.0)
        with_likelihood = self.with_terms({"likelihood": likelihood}, config)
        return replace(with_likelihood, target_log_likelihood=log_likelihood)

    def summary(self) -> dict[str, float | torch.Tensor]:
        """Per-episode means for the logs (same tags for every algorithm)."""
        active = self.active.float()
        steps = active.sum().clamp(min=1)
        groups = self.final_state.num_groups.float()
        stats: dict[str, float | torch.Tensor] = {
            "charts/episode_return": self.rewards.detach().sum(1).mean().item(),
            "groups/per_episode": groups.mean().item(),
            "groups/creation_rate": (self.created.float().sum() / steps).item(),
            "groups/pair_cosine": mean_pair_cosine(self.final_state),
            "policy/entropy": ((self.entropies.detach() * active).sum() / steps).item(),
            "hist/groups_per_episode": groups.cpu(),
        }
        for name, term in self.reward_terms.items():
            stats[f"rewards/{name}"] = term.detach().sum(1).mean().item()
        return stats


def sample_actions(policy: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One action per row of ``policy`` (B, G) (probabilities, rows summing to 1): the
    same draws as ``torch.multinomial(policy, 1, generator=generator)[:, 0]``, which for
    one sample computes ``argmax(policy / q)`` with ``q ~ Exp(1)`` (the Gumbel-max trick)
    after checking the rows with two host syncs. The rows here come from a softmax, so
    the checks are skipped: per MDP step about ten operators and two syncs fewer."""
    noise = torch.empty_like(policy).exponential_(generator=generator)
    return (policy / noise).argmax(dim=1)


def masked_logits(logits: torch.Tensor, state: AllocationState) -> torch.Tensor:
    """Restrict any policy's logits to the canonical valid actions."""
    return logits.masked_fill(~state.action_mask, -torch.inf)


def run_episodes(
    process: AllocationProcess,
    samples: Samples,
    policy_logits,
    greedy: bool = False,
    generator: torch.Generator | None = None,
    value_fn=None,
    forced_actions: torch.Tensor | None = None,
    start: AllocationState | None = None,
    score_target: bool = True,
    allocation_terms: bool = True,
) -> Rollout:
    """Roll B episodes out with ``policy_logits(state) -> (B, G)`` (gradients kept).

    Actions are sampled in training and argmax with ``greedy`` (Eq. 22);
    ``forced_actions`` (B, L+1) replays recorded ones instead, by step
    position (as in :attr:`AllocationState.assignments`). ``value_fn(state) -> (B,)`` is recorded per step.
    ``start`` is ``process.reset(samples)`` when the caller has it already;
    ``score_target`` False leaves the likelihood reward out (see
    :meth:`Rollout.with_target_log_likelihood`), ``allocation_terms`` False Eq. 14-15
    (see :meth:`Rollout.with_terms`).
    """
    state = process.reset(samples) if start is None else start
    names = ("actions", "log_probs", "entropies", "rewards", "created", "active")
    columns: dict[str, list[torch.Tensor]] = {key: [] for key in names}
    terms: dict[str, list[torch.Tensor]] = {}
    values = []
    target_repr = torch.zeros_like(state.user_embs)
    target_log_likelihood = None
    # every step moves each unfinished cursor on by one, so the steps are known now:
    # one host sync for the rollout, not one per step
    remaining = state.target_position + 1 - state.cursor
    for _ in range(int(remaining.clamp(min=0).max())):
        if value_fn is not None:
            values.append(value_fn(state))
        logits = masked_logits(policy_logits(state), state)
        # The categorical distribution by hand: no argument validation in the hot loop.
        log_policy = torch.log_softmax(logits, dim=1)
        policy = log_policy.exp()
        if forced_actions is not None:
            position = state.cursor.clamp(max=state.target_position)[:, None]
            actions = forced_actions.to(logits.device).gather(1, position)[:, 0]
        elif greedy:
            actions = logits.argmax(dim=1)
        else:
            actions = sample_actions(policy, generator)
        log_probs = log_policy.gather(1, actions[:, None])[:, 0]
        entropy = -(policy * log_policy.masked_fill(policy == 0, 0.0)).sum(dim=1)
        state, out = process.step(
            state, actions, score_target=score_target, allocation_terms=allocation_terms
        )
        active = out.active
        target_repr = torch.where(out.was_target[:, None], out.selected_group_repr, target_repr)
        if out.target_log_likelihood is not None:
            target_log_likelihood = (
                out.target_log_likelihood
                if target_log_likelihood is None
                else torch.where(out.was_target, out.target_log_likelihood, target_log_likelihood)
            )
        columns["actions"].append(actions)
        columns["log_probs"].append(log_probs)  # zeroed once episodes end, after the loop
        columns["entropies"].append(entropy)
        columns["rewards"].append(out.reward)
        columns["created"].append(out.created)
        columns["active"].append(active)
        for term, value in out.reward_terms().items():
            terms.setdefault(term, []).append(value)
    stacked = {key: torch.stack(value, dim=1) for key, value in columns.items()}
    active = stacked["active"]
    return Rollout(
        actions=stacked["actions"],
        log_probs=torch.where(active, stacked["log_probs"], 0.0),
        entropies=torch.where(active, stacked["entropies"], 0.0),
        rewards=stacked["rewards"],
        reward_terms={term: torch.stack(values, dim=1) for term, values in terms.items()},
        created=stacked["created"],
        active=stacked["active"],
        target_group_repr=target_repr,
        final_state=state,
        values=torch.stack(values, dim=1) if values else None,
        target_log_likelihood=target_log_likelihood,
    )


class TrainingContext(Protocol):
    """What an agent may read of the run that drives it (:class:`agents.trainer.Trainer`
    is one): the data, where the run writes, the sampling generator, and the loop's
    services. Nothing else of the trainer is an agent's business."""

    config: Any
    dataset: Any
    train_samples: Samples
    device: torch.device
    run_dir: Path
    sampling: torch.Generator  # seeded per rank; a resume restores it
    loss_module: nn.Module  # the agent, or its DistributedDataParallel wrapper

    def epoch_batches(self, epoch: int) -> list[Samples]: ...

    def shard(self, batch: Samples) -> Samples: ...

    def progress_bar(self, iterable, epoch: int, total: int | None = None): ...

    def optimize(self, loss: torch.Tensor, stats: dict) -> None: ...

    def log_due(self) -> bool: ...

    def log(self, stats: dict) -> None: ...

    def bar_postfix(self) -> dict: ...


def shard_batch(batch: Samples, rank: int, world_size: int) -> Samples:
    """Rank ``rank``'s share of a batch under data-parallel training: every
    ``world_size``-th sample from the ``rank``-th (all of it with one process)."""
    if world_size == 1:
        return batch
    return batch.subset(torch.arange(rank, len(batch), world_size))


class Agent(nn.Module):
    """A learner of the allocation policy, trained jointly with the recommender.

    Subclasses set ``name`` and implement :meth:`loss`; they may override
    :meth:`policy_logits` (default: the paper's policy head, Eq. 7-8) and add
    modules of their own (a critic, say), which the trainer optimises and
    checkpoints with the recommender.
    """

    name = "agent"
    # whether the trainer logs the stats of the update being computed (it sets this
    # before each, :meth:`TrainingContext.log_due`); where False, :meth:`loss` may skip
    # what only the logs read and return empty stats
    log_stats: bool = True

    def __init__(
        self, process: AllocationProcess | None, config, model: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.process = process
        # registered: the recommender's parameters are the agent's too
        self.model = model if model is not None else process.model
        self.config = config

    def score(self, batch: Samples) -> torch.Tensor:
        """Full-ranking scores (B, num_items + 1) (section 3.3)."""
        return score_all_items(self.process, batch)

    def rank_scores(self, batch: Samples, cutoff: int | None = None, exclude=None) -> torch.Tensor:
        """What evaluation ranks the targets by: :func:`~adasplit_env.scoring.rank_scores`
        (the same ranks up to ``cutoff``, routing only the candidates that can reach the
        target), or the agent's own :meth:`score` where a subclass replaces it."""
        if type(self).score is not Agent.score:
            return self.score(batch)
        return rank_scores(self.process, batch, cutoff, exclude)

    @property
    def allocation_terms_needed(self) -> bool:
        """Whether this update computes Eq. 14-15: where the reward weighs them or the
        logs read them (:attr:`log_stats`). With weight 0 they add nothing to any
        reward, so leaving them out changes no number that trains."""
        return self.log_stats or self.process.rewards.allocation_reward_weight != 0

    def policy_logits(self, state: AllocationState) -> torch.Tensor:
        """The paper's policy; with ``rl_gradient policy`` it reads a detached state, so
        that the policy-gradient loss trains the policy head only (not the encoder,
        the embeddings or the group updater through the policy's inputs)."""
        detach = self.config.learner.rl_gradient == "policy"
        return self.process.policy_logits(state, detach_inputs=detach)

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        """Return ``(loss, stats)``: a scalar to minimise and a dict of floats for the logs."""
        raise NotImplementedError(f"{type(self).__name__} must implement loss()")

    def forward(self, batch: Samples, generator: torch.Generator | None = None):
        """The loss, as a forward pass (what DistributedDataParallel wraps)."""
        return self.loss(batch, generator)

    def setup(self, trainer: TrainingContext) -> None:
        """Called once the trainer has its dataset, samples and run dir (before its optimiser)."""

    def run_epoch(self, trainer: TrainingContext, epoch: int) -> None:
        """One epoch: by default one update of ``loss`` per shuffled mini-batch."""
        bar = trainer.progress_bar(trainer.epoch_batches(epoch), epoch)
        try:
            for batch in bar:
                self.log_stats = trainer.log_due()
                batch = trainer.shard(batch)
                # loss_module is this agent, or its DistributedDataParallel wrapper
                loss, stats = trainer.loss_module(batch, generator=trainer.sampling)
                trainer.optimize(loss, stats)
                bar.set_postfix(trainer.bar_postfix())
        finally:
            self.log_stats = True  # a loss asked for outside the loop has its stats

    def joint_loss(
        self,
        rollout: Rollout,
        seq_loss: torch.Tensor,
        rl_loss: torch.Tensor,
        entropy: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict]:
        """Eq. 21, ``L = L_seq + beta * L_rl``, less ``entropy_coef * entropy`` where a
        learner gives its policy's entropy (a2c), with the update's standard stats (the
        rollout's summary and the three losses) for the logs, none where they are not
        logged (:attr:`log_stats`)."""
        loss = seq_loss + self.config.learner.beta * rl_loss
        if entropy is not None:
            loss = loss - self.config.learner.entropy_coef * entropy
        if not self.log_stats:
            return loss, {}
        stats = rollout.summary()
        stats["losses/seq"] = seq_loss.item()
        stats["losses/rl"] = rl_loss.item()
        stats["losses/total"] = loss.item()
        return loss, stats

    def trainable_parameters(self):
        """What the trainer's Adam optimises (default: everything, recommender included)."""
        return self.parameters()

    def sequence_rollout(self, rollout: Rollout, batch: Samples) -> Rollout:
        """The rollout L_seq is trained on: the given (sampled) one, or with
        ``seq_rollout greedy`` an argmax rollout of the same batch, so that the
        recommender learns from the allocations prediction makes."""
        if self.config.learner.seq_rollout != "greedy":
            return rollout
        return run_episodes(self.process, batch, self.policy_logits, greedy=True)

    def sequence_loss(self, rollout: Rollout, batch: Samples) -> torch.Tensor:
        """Eq. 20: cross-entropy of ``p_a . E`` over all items for the target's group
        (with ``scoring max``: of ``max_i p_i . E`` over the history's groups). Where the
        likelihood reward already computed log p(target) with its graph, its mean is used
        (the same number; the item logits are not computed twice)."""
        if rollout.target_log_likelihood is not None:
            return -rollout.target_log_likelihood.mean()
        logits = self.sequence_logits(rollout)
        return F.cross_entropy(logits, batch.targets.to(logits.device))

    def sequence_logits(self, rollout: Rollout) -> torch.Tensor:
        """(B, num_items + 1) the target's logits under the scoring rule (Eq. 20 or max)."""
        # the groups as the scoring rule reads them, less a group the target step opened
        history_group_reprs = self.process.scoring_group_reprs(rollout.final_state)
        return self.model.target_logits(
            rollout.target_group_repr,
            history_group_reprs * rollout.history_group_mask[..., None],
            rollout.history_group_mask,
            rollout.final_state.sequence_state,
        )
