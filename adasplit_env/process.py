"""The allocation MDP, once: a batch of B episodes stepped together in torch.

Everything else is a view of this module: the joint trainers call it with
gradients on, the Gymnasium env is B = 1 with numpy observations, the vector
envs are B = num_envs. No other file implements the dynamics or the rewards.

An episode is one sample (user, history, target). Histories are left-padded
to ``L = max_len``; step positions ``0 .. L-1`` hold the history and position
``L`` the target. Each episode has its own cursor, starting at its first real
item, so an episode with n history items takes n + 1 steps; finished
episodes stay frozen (zero reward) while the others go on.

Action semantics (docs/design.md, section 4): ``a < h`` puts the item into group a;
``a >= h`` opens a new group, which becomes group h (``e_u``, then updated
with the item). Only the chosen group changes (Eq. 9-11). At the target step
the chosen group is read out (``selected_group_repr``, the p_a of Eq. 20)
and not updated with the target, which is what is being predicted.

Speed (issue 13): whatever a step needs that does not depend on the allocation
is computed once at reset, for every step position at once: the encoder's item
vectors, the item's side of the join logits and of the group update, and the
policy's weights folded into a few small maps. So an episode reads the
recommender's weights as they were when it began, and the hot loop runs only
the group-dependent arithmetic. The rewards are computed without a graph (no
learner differentiates them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace

import torch

from adasplit_env.constants import index_range
from adasplit_env.data.split import Samples
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import RewardConfig
from adasplit_env.model.join_rules import AllocationView, JoinQuery, group_dots
from adasplit_env.model.updaters import START, GroupVersions
from adasplit_env.rewards import (
    REWARD_TERMS,
    allocation_reward,
    creation_penalty,
    orthogonality_of_gram,
    orthogonality_reward,
    total_reward,
)


@dataclass(frozen=True)
class AllocationState:
    """The state of B episodes. Shapes: B episodes, G = max_groups slots, d dims,
    L + 1 step positions."""

    users: torch.Tensor  # (B,) int64
    step_item_ids: torch.Tensor  # (B, L+1) history ids then the target id
    step_items: torch.Tensor  # (B, L+1, d) v_T of the history (Eq. 4-6), then e_target
    user_embs: torch.Tensor  # (B, d) e_u, the start of every group
    cursor: torch.Tensor  # (B,) int64 position of the item to allocate now
    done: torch.Tensor  # (B,) bool
    group_reprs: torch.Tensor  # (B, G, d) p_i, zero in empty slots
    group_memory: torch.Tensor  # (B, G, d) LSTM cells (zeros for other updaters)
    group_sizes: torch.Tensor  # (B, G) int64 items absorbed per group
    num_groups: torch.Tensor  # (B,) int64 h
    num_created: torch.Tensor  # (B,) int64 T_a, groups created so far (Eq. 17)
    assignments: torch.Tensor  # (B, L+1) int64 slot of each allocated item, -1 before
    sequence_state: torch.Tensor | None  # (B, d) the readout's state (readout sasrec), or None
    # Computed once at reset, as nothing in them depends on the allocation (see
    # AllocationPolicyHead.item_terms / folded_maps and the updaters' item_terms):
    step_policy_terms: torch.Tensor  # (B, L+1, K) the join logits' item side per step
    step_update_terms: torch.Tensor  # (B, L+1, K') the group update's item side per step
    # The policy's folded weights: one for all episodes, not per row.
    policy_maps: tuple[torch.Tensor, ...] = field(default=(), metadata={"shared": True})

    @property
    def batch_size(self) -> int:
        return int(self.users.shape[0])

    @property
    def max_groups(self) -> int:
        return int(self.group_reprs.shape[1])

    @property
    def target_position(self) -> int:
        return int(self.step_items.shape[1]) - 1

    @property
    def group_mask(self) -> torch.Tensor:
        """(B, G) bool: the h active groups."""
        slots = index_range(self.max_groups, self.num_groups.device)
        return slots[None, :] < self.num_groups[:, None]

    @property
    def action_mask(self) -> torch.Tensor:
        """(B, G) bool: joins 0..h-1 plus create at slot h while h < G."""
        slots = index_range(self.max_groups, self.num_groups.device)
        return slots[None, :] <= self.num_groups[:, None]

    @functools.cached_property  # read by the policy and the rewards of a step: one host sync
    def active_width(self) -> int:
        """Slots in use by some episode, counting each one's create slot: max h + 1, at most G."""
        return min(self.max_groups, int(self.num_groups.max()) + 1)

    @property
    def at_target(self) -> torch.Tensor:
        """(B,) bool: the current item is the target."""
        return self.cursor >= self.target_position

    def at_cursor(self, per_step: torch.Tensor) -> torch.Tensor:
        """(B, ...) the entry of a (B, L+1, ...) tensor at each episode's current
        position (the last one once done)."""
        position = self.cursor.clamp(max=self.target_position)
        return per_step[index_range(self.batch_size, position.device), position]

    @property
    def current_items(self) -> torch.Tensor:
        """(B, d) the vector of the item to allocate now (the last one once done)."""
        return self.at_cursor(self.step_items)

    def where(self, rows: torch.Tensor, other: AllocationState) -> AllocationState:
        """Take ``other``'s episodes in the rows where ``rows`` (B,) is True
        (and ``other``'s shared fields)."""
        merged = {}
        for f in _row_fields():
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is None:  # an optional field the model does not use
                merged[f.name] = None
                continue
            mask = rows.view(-1, *([1] * (mine.dim() - 1)))
            merged[f.name] = torch.where(mask, theirs, mine)
        return AllocationState(**merged, policy_maps=other.policy_maps)

    def replace_rows(self, rows: torch.Tensor, other: AllocationState) -> AllocationState:
        """Put ``other``'s episodes (len(rows) of them) into the rows ``rows`` (int64);
        the shared fields become ``other``'s (the newer weights)."""
        rows = rows.to(self.cursor.device)
        merged = {}
        for f in _row_fields():
            mine = getattr(self, f.name)  # None: an optional field the model does not use
            merged[f.name] = (
                None if mine is None else mine.index_copy(0, rows, getattr(other, f.name))
            )
        return AllocationState(**merged, policy_maps=other.policy_maps)


@functools.cache
def _row_fields():
    """The fields of :class:`AllocationState` that hold one entry per episode."""
    return [f for f in fields(AllocationState) if not f.metadata.get("shared")]


@dataclass(frozen=True)
class StepOutput:
    """What one step produced, per episode (B,)."""

    allocation_reward: torch.Tensor | None  # Eq. 14 (None: left to the replay)
    orthogonality_reward: torch.Tensor | None  # Eq. 15 (likewise)
    creation_reward: torch.Tensor  # Eq. 16-17
    likelihood_reward: torch.Tensor  # log p(target) at the target step (option), else 0
    reward: torch.Tensor  # a (r_loss + lambda_o r_ort) + r_create + w log p(target)
    created: torch.Tensor  # bool: the step opened a group
    chosen: torch.Tensor  # int64 slot the item went to
    active: torch.Tensor  # bool: the episode took this step (was not done)
    was_target: torch.Tensor  # bool: the step allocated the target
    selected_group_repr: torch.Tensor  # (B, d) p_a before the update (Eq. 20 at the target)
    done: torch.Tensor  # bool: the episode is over after this step
    # log p(target) with its graph in the rows that allocated their target (0 elsewhere),
    # when the likelihood reward is on (else None): minus its mean is Eq. 20's L_seq
    target_log_likelihood: torch.Tensor | None = None

    def reward_terms(self) -> dict[str, torch.Tensor]:
        """Each term of REWARD_TERMS the step computed, unweighted, by name."""
        terms = {term: getattr(self, f"{term}_reward") for term in REWARD_TERMS}
        return {term: value for term, value in terms.items() if value is not None}


@dataclass(frozen=True)
class Replay:
    """What :meth:`AllocationProcess.replay` computes for B episodes and their given
    allocation, by step position (P = L + 1: the history, then the target)."""

    group_versions: GroupVersions  # every group state (p_i, Eq. 9-11) along the allocation
    num_groups: torch.Tensor  # (B, P) int64 h before each position
    log_probs: torch.Tensor  # (B, P) log pi(a_T | s_T) of the allocated slot, 0 where none
    entropies: torch.Tensor  # (B, P) of the policy, 0 where nothing was allocated
    history_group_reprs: torch.Tensor  # (B, G, d) the history's groups, zero in unused slots
    history_group_mask: torch.Tensor  # (B, G)
    target_group_repr: torch.Tensor  # (B, d) p_a chosen for the target (Eq. 20)
    target_log_likelihood: torch.Tensor | None  # (B,) log p(target) with its graph
    allocation_reward: torch.Tensor | None = None  # (B, P) Eq. 14, when asked for
    orthogonality_reward: torch.Tensor | None = None  # (B, P) Eq. 15, likewise

    @staticmethod
    def by_step(
        per_position: torch.Tensor, first_positions: torch.Tensor, steps: int
    ) -> torch.Tensor:
        """(B, P) by position -> (B, steps) by step, as a rollout's columns are (step k of
        episode b is position ``first_positions[b] + k``; ``steps`` is the longest
        episode's), zero past an episode's end."""
        positions = per_position.shape[1]
        steps = index_range(steps, per_position.device)
        at = first_positions[:, None] + steps[None, :]
        taken = per_position.gather(1, at.clamp(max=positions - 1))
        return torch.where(at < positions, taken, 0.0)


class AllocationProcess:
    """The batched, differentiable allocation MDP around an :class:`AdaSplitModel`."""

    def __init__(self, model: AdaSplitModel, rewards: RewardConfig | None = None) -> None:
        self.model = model
        self.rewards = rewards or RewardConfig()
        # whether observations carry entries of the join rule's (checked once, not per step)
        self._rule_observes = bool(model.policy.observation_fields(model.max_groups, 1))

    def compile(self) -> AllocationProcess:
        """``torch.compile`` the per-step work, :meth:`step` and :meth:`policy_logits`
        (``--compile``), for this process only; returns it.

        Shapes are static: a graph per number of group slots in use (up to
        ``max_groups``) and per batch size, each compiled on first use. The
        results equal the eager ones to float rounding
        (``test_compiled_process_trains_like_the_eager_one``).
        """
        import torch._dynamo

        # slot widths x grad modes x the last short batch: more graphs than dynamo's
        # default of 8 per function, past which it would fall back to eager
        limit = 4 * (self.max_groups + 1)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, limit)
        self.step = torch.compile(self.step, dynamic=False)
        self.policy_logits = torch.compile(self.policy_logits, dynamic=False)
        return self

    @property
    def max_groups(self) -> int:
        return self.model.max_groups

    @property
    def device(self) -> torch.device:
        return self.model.item_embeddings.weight.device

    def reset(self, samples: Samples) -> AllocationState:
        """Start one episode per sample: h = 1 group holding ``e_u``."""
        model, device = self.model, self.device
        users = samples.users.to(device)
        histories = samples.histories.to(device)
        targets = samples.targets.to(device)
        user_embs, history_items = model.encode(users, histories)
        target_embs = model.item_embeddings(targets)
        batch, length = histories.shape
        dim, groups = user_embs.shape[1], self.max_groups
        group_reprs = torch.cat(
            [user_embs[:, None, :], user_embs.new_zeros(batch, groups - 1, dim)], dim=1
        )
        lengths = (histories != 0).sum(dim=1)
        step_items = torch.cat([history_items, target_embs[:, None, :]], dim=1)
        return AllocationState(
            users=users,
            step_item_ids=torch.cat([histories, targets[:, None]], dim=1),
            step_items=step_items,
            user_embs=user_embs,
            cursor=length - lengths,
            done=torch.zeros(batch, dtype=torch.bool, device=device),
            group_reprs=group_reprs,
            group_memory=torch.zeros_like(group_reprs),
            group_sizes=torch.zeros(batch, groups, dtype=torch.int64, device=device),
            num_groups=torch.ones(batch, dtype=torch.int64, device=device),
            num_created=torch.zeros(batch, dtype=torch.int64, device=device),
            assignments=torch.full((batch, length + 1), -1, dtype=torch.int64, device=device),
            sequence_state=model.sequence_state(histories),
            step_policy_terms=model.policy.item_terms(step_items),
            step_update_terms=model.group_updater.item_terms(step_items),
            policy_maps=model.policy.folded_maps(),
        )

    def policy_logits(self, state: AllocationState, detach_inputs: bool = False) -> torch.Tensor:
        """The policy's logits over the action slots, (B, G): the join rule's
        (:meth:`JoinRule.slot_logits`; the paper's Eq. 7-8, 12-13 by default).

        Only the slots some episode can use (its groups and its create slot)
        are computed; the rest are -inf. With ``detach_inputs`` the policy reads
        its inputs (the item, the groups) without their gradient, so that a loss
        on these logits trains the policy head only.
        """
        return self._join_logits(self.join_query(state), state.active_width, detach_inputs)

    def join_query(self, state: AllocationState, width: int | None = None) -> JoinQuery:
        """What the join rule reads of each episode's current step: the item, its groups
        (the first ``width`` slots, default all), and the allocation so far where the
        rule reads it."""
        position = state.cursor.clamp(max=state.target_position)
        rows = index_range(state.batch_size, position.device)
        allocation = None
        if self.model.policy.reads_allocation:
            allocation = AllocationView(
                item_ids=state.step_item_ids,
                assignments=state.assignments,
                position=position,
                group_sizes=state.group_sizes,
                max_groups=self.max_groups,
            )
        return JoinQuery(
            items=state.step_items[rows, position],
            item_terms=state.step_policy_terms[rows, position],
            group_reprs=state.group_reprs if width is None else state.group_reprs[:, :width],
            num_groups=state.num_groups,
            maps=state.policy_maps,
            allocation=allocation,
        )

    def _join_logits(self, query: JoinQuery, width: int, detach_inputs: bool) -> torch.Tensor:
        """The join rule's slot logits (N, G) for N (item, groups) pairs: one per episode
        in a step, one per episode and position in :meth:`replay`. Only the first
        ``width`` slots (every pair's groups and create slot) are computed, the rest are
        -inf."""
        query = replace(query, group_reprs=query.group_reprs[:, :width])
        if detach_inputs:
            query = query.detached(self.model.policy)
        return self.model.policy.slot_logits(query, self.max_groups)

    def step(
        self,
        state: AllocationState,
        actions: torch.Tensor,
        score_target: bool = True,
        allocation_terms: bool = True,
    ) -> tuple[AllocationState, StepOutput]:
        """Allocate every unfinished episode's current item by ``actions`` (B,) in [0, G).

        Actions are not range-checked here (the hot path); the faces check them.
        With ``score_target`` False the likelihood reward is left at 0 (the parallel
        training path computes it once, with its graph, in :meth:`replay`); with
        ``allocation_terms`` False Eq. 14-15 are left out (None, and not in the reward),
        which :meth:`replay` computes for every position at once.
        """
        device = actions.device
        rows = index_range(state.batch_size, device)
        position = state.cursor.clamp(max=state.target_position)
        actions = actions.long()
        active = ~state.done
        at_target = state.cursor >= state.target_position
        num_groups = state.num_groups
        creates = actions >= num_groups
        created = creates & active
        chosen = torch.where(creates, num_groups, actions)
        items = state.step_items[rows, position]

        # Eq. 9-10: only the chosen group absorbs the item; never the target.
        absorbs = active & ~at_target
        update_terms = state.step_update_terms
        group_reprs, group_memory, group_sizes, selected = self.model.group_updater.absorb(
            state.group_reprs,
            state.group_memory,
            state.group_sizes,
            chosen,
            created,
            absorbs,
            state.user_embs,
            items,
            update_terms[rows, position],
        )
        created_count = created.long()

        target_log_likelihood = (
            self._target_log_likelihood(state, selected, at_target & active)
            if score_target
            else None
        )
        # The rewards steer the learners, which never differentiate them: no graph.
        with torch.no_grad():
            terms = self._reward_terms(
                state,
                items,
                selected,
                chosen,
                created,
                group_reprs,
                None if target_log_likelihood is None else target_log_likelihood.detach(),
                allocation_terms,
            )
        allocation, orthogonality, creation, likelihood, reward = (
            None if term is None else torch.where(active, term, 0.0) for term in terms
        )

        step_positions = index_range(state.assignments.shape[1], device)
        placed = (step_positions[None, :] == position[:, None]) & active[:, None]
        cursor = state.cursor + active
        done = cursor > state.target_position
        next_state = replace(
            state,
            cursor=cursor,
            done=done,
            group_reprs=group_reprs,
            group_memory=group_memory,
            group_sizes=group_sizes,
            num_groups=num_groups + created_count,
            num_created=state.num_created + created_count,
            assignments=torch.where(placed, chosen[:, None], state.assignments),
        )
        output = StepOutput(
            allocation_reward=allocation,
            orthogonality_reward=orthogonality,
            creation_reward=creation,
            likelihood_reward=likelihood,
            reward=reward,
            created=created,
            chosen=chosen,
            active=active,
            was_target=at_target & active,
            selected_group_repr=selected,
            done=done,
            target_log_likelihood=target_log_likelihood,
        )
        return next_state, output

    def _reward_terms(
        self,
        state: AllocationState,
        items: torch.Tensor,
        selected: torch.Tensor,
        chosen: torch.Tensor,
        created: torch.Tensor,
        group_reprs: torch.Tensor,
        likelihood: torch.Tensor | None,
        allocation_terms: bool = True,
    ) -> tuple[torch.Tensor | None, ...]:
        """Eq. 14-17 and the likelihood term of one step, and the reward they make, (B,)
        each (also in rows that took no step; the caller zeroes those); Eq. 14-15 None
        unless ``allocation_terms``."""
        creation = -creation_penalty(state.num_created, self.rewards) * created
        zero = torch.zeros_like(creation)
        allocation = orthogonality = None
        if allocation_terms:
            slots = index_range(state.max_groups, chosen.device)
            new_slot = (slots[None, :] == chosen[:, None]) & created[:, None]
            mask_after = slots[None, :] < (state.num_groups + created.long())[:, None]
            # Eq. 14 over the groups before the update (the new one as e_u).
            affinity = group_dots(state.group_reprs, items)
            affinity = torch.where(new_slot, (selected * items).sum(dim=1, keepdim=True), affinity)
            allocation = allocation_reward(affinity, mask_after, chosen)
            width = state.active_width  # no group beyond it, even after this step
            orthogonality = orthogonality_reward(group_reprs[:, :width], mask_after[:, :width])
        likelihood = zero if likelihood is None else likelihood
        reward = total_reward(
            self.rewards,
            zero if allocation is None else allocation,
            zero if orthogonality is None else orthogonality,
            creation,
            likelihood,
        )
        return allocation, orthogonality, creation, likelihood, reward

    def _target_log_likelihood(
        self, state: AllocationState, selected: torch.Tensor, at_target: torch.Tensor
    ) -> torch.Tensor | None:
        """log p(target) under the model's scoring rule in the rows allocating their
        target now (0 elsewhere), with its graph when gradients are on; None when the
        likelihood reward is off. The reward reads it detached, and a learner's L_seq
        on this rollout is minus its mean, so the item logits (the costly part with
        max scoring: every group against every item) are computed once per episode."""
        if self.rewards.likelihood_reward == 0:
            return None
        log_likelihood = torch.zeros(state.batch_size, device=selected.device, dtype=selected.dtype)
        if not bool(at_target.any()):
            return log_likelihood
        rows = torch.nonzero(at_target).flatten()
        sequence_state = state.sequence_state
        target_rows = self.target_log_likelihood(
            selected[rows],
            self.scoring_group_reprs(state, rows),
            state.group_mask[rows],
            None if sequence_state is None else sequence_state[rows],
            state.step_item_ids[rows, state.target_position],
        )
        return log_likelihood.index_put((rows,), target_rows)

    def target_log_likelihood(
        self,
        chosen_group_repr: torch.Tensor,
        group_reprs: torch.Tensor,
        group_mask: torch.Tensor,
        sequence_state: torch.Tensor | None,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """log p(target) (N,) under the scoring rule (:meth:`AdaSplitModel.target_logits`)
        for N episodes at their target step: the target's chosen group (Eq. 20), the
        history's groups and their mask, the SASRec readout's state or None."""
        logits = self.model.target_logits(
            chosen_group_repr, group_reprs, group_mask, sequence_state
        )
        return torch.log_softmax(logits, dim=1).gather(1, targets[:, None])[:, 0]

    def scoring_group_reprs(
        self, state: AllocationState, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, G, d) the groups as items are scored (``max``/``lse``): the updater's p_i,
        or with ``group_repr encoder`` the group encoder over the history as allocated
        so far (:meth:`AdaSplitModel.encode_groups`); only ``rows`` where given."""
        length = state.target_position
        histories, assignments = state.step_item_ids[:, :length], state.assignments[:, :length]
        group_reprs = state.group_reprs
        if rows is not None:
            histories, assignments, group_reprs = (
                histories[rows],
                assignments[rows],
                group_reprs[rows],
            )
        return self._scoring_groups(group_reprs, histories, assignments)

    def _scoring_groups(
        self, group_reprs: torch.Tensor, histories: torch.Tensor, assignments: torch.Tensor
    ) -> torch.Tensor:
        return self.model.group_view.scoring_groups(
            group_reprs, self.model.item_embeddings, histories, assignments, self.max_groups
        )

    def replay(
        self,
        state: AllocationState,
        assignments: torch.Tensor,
        detach_policy_inputs: bool = False,
        score_target: bool = True,
        allocation_terms: bool = False,
    ) -> Replay:
        """The parallel training path: a whole allocation's differentiable quantities at
        every step position at once, for the episodes ``state`` (as :meth:`reset` left
        them, with their graph) allocated by ``assignments`` (B, L+1) (each position's
        slot, -1 before an episode's first item: a rollout's final
        ``AllocationState.assignments``).

        Computed here, with gradients: every state the groups take
        (:meth:`GroupUpdater.group_versions`: the updater's closed form where it has one,
        else its update walked by depth in a group, with no policy or reward in it), the
        policy's logits at every position in one call of the join rule (each group state
        scored once where the rule reads one group at a time), so the log-probabilities of
        the allocated slots, and the
        target's log-likelihood (``score_target``), read by L_seq and, detached, by the
        likelihood reward. Equal to what :meth:`step` computes along the same allocation,
        to float tolerance (``tests/test_parallel.py``).

        Not recomputed, as nothing differentiates them: the sampling (a rollout without
        gradients chose ``assignments``) and the paper's reward terms (Eq. 14-17), which
        that rollout computed, except Eq. 14-15 with ``allocation_terms``, for a rollout
        that left them out (:meth:`_allocation_terms`); with a deterministic join rule
        (``cluster``) the choices are the rule's, so each has probability 1.
        """
        batch, positions = assignments.shape
        slots = index_range(self.max_groups, assignments.device)
        versions = self.model.group_updater.group_versions(
            state.user_embs, state.step_items, state.step_update_terms, assignments, self.max_groups
        )
        # h before each position: slots open in order, so 1 + the largest slot used so far
        largest = torch.cummax(assignments, dim=1).values
        largest = torch.cat([largest.new_full((batch, 1), -1), largest[:, :-1]], dim=1)
        num_groups = (largest + 1).clamp(min=1)
        allocated = assignments >= 0
        chosen = assignments.clamp(min=0)
        action_mask = slots <= num_groups[..., None]
        width = min(self.max_groups, int(num_groups.max()) + 1)  # every group and create slot
        if self.model.policy.deterministic:
            # the rule chose the allocation: each choice has probability 1
            logits = torch.where(slots == chosen[..., None], 0.0, -torch.inf)
        else:
            logits = self._replay_logits(state, versions, num_groups, width, detach_policy_inputs)
        log_policy = torch.log_softmax(logits.masked_fill(~action_mask, -torch.inf), dim=-1)
        policy = log_policy.exp()
        log_probs = torch.where(allocated, log_policy.gather(2, chosen[..., None])[..., 0], 0.0)
        entropies = -(policy * log_policy.masked_fill(policy == 0, 0.0)).sum(dim=-1)
        entropies = torch.where(allocated, entropies, 0.0)

        rows = index_range(batch, assignments.device)
        history_mask = slots < num_groups[:, -1, None]
        # the groups before the target, which is not absorbed
        history_groups = versions.before_position(positions - 1) * history_mask[..., None]
        target_slot = chosen[:, -1]
        created_at_target = target_slot >= num_groups[:, -1]
        target_group_repr = torch.where(
            created_at_target[:, None], state.user_embs, history_groups[rows, target_slot]
        )
        target_log_likelihood = None
        if score_target:
            length = positions - 1
            scoring_groups = self._scoring_groups(
                history_groups, state.step_item_ids[:, :length], assignments[:, :length]
            )
            target_log_likelihood = self.target_log_likelihood(
                target_group_repr,
                scoring_groups,
                history_mask,
                state.sequence_state,
                state.step_item_ids[:, -1],
            )
        allocation = orthogonality = None
        if allocation_terms:
            allocation, orthogonality = self._allocation_terms(
                state, versions, assignments, num_groups, width
            )
        return Replay(
            group_versions=versions,
            num_groups=num_groups,
            log_probs=log_probs,
            entropies=entropies,
            history_group_reprs=history_groups,
            history_group_mask=history_mask,
            target_group_repr=target_group_repr,
            target_log_likelihood=target_log_likelihood,
            allocation_reward=allocation,
            orthogonality_reward=orthogonality,
        )

    @torch.no_grad()  # the rewards steer the learners, which never differentiate them
    def _allocation_terms(
        self,
        state: AllocationState,
        versions: GroupVersions,
        assignments: torch.Tensor,
        num_groups: torch.Tensor,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 14 and 15 (B, P) at every position of a replay, by the functions
        :meth:`step` calls: the allocation reward over the groups before the update (a
        group created here read as its start), the orthogonality over the groups after
        it, which are those before the next position (at the target, which absorbs
        nothing, those before it, a created one at its start). Where no item was
        allocated the entries are meaningless (:meth:`Replay.by_step` drops them).
        ``width``: the slots any position uses, its groups and its create slot."""
        batch, positions = assignments.shape
        slots = index_range(width, assignments.device)
        chosen = assignments.clamp(min=0)
        created = assignments == num_groups
        new_slot = (slots == chosen[..., None]) & created[..., None]
        mask_after = slots < (num_groups + created.long())[..., None]
        before = torch.where(new_slot, START, versions.before[..., :width])
        # p_i . v_T for every (position, version), read at the versions each position sees
        affinity = torch.bmm(state.step_items, versions.vectors.transpose(1, 2))
        allocation = allocation_reward(affinity.gather(2, before), mask_after, chosen)
        after = torch.cat([versions.before[:, 1:, :width], before[:, -1:]], dim=1)
        # p_i . p_j for every pair of versions, read at the pairs each position holds
        versions_gram = torch.bmm(versions.vectors, versions.vectors.transpose(1, 2))
        count = versions_gram.shape[1]
        pairs = (after[..., :, None] * count + after[..., None, :]).view(batch, -1)
        gram = versions_gram.view(batch, -1).gather(1, pairs).view(batch, positions, width, width)
        return allocation, orthogonality_of_gram(gram, mask_after)

    def _replay_logits(
        self,
        state: AllocationState,
        versions: GroupVersions,
        num_groups: torch.Tensor,
        width: int,
        detach_inputs: bool,
    ) -> torch.Tensor:
        """(B, P, G) the policy's slot logits at every position of a replay, the first
        ``width`` slots computed. A rule whose join logit reads one group at a time
        (:meth:`JoinRule.version_logits`) scores each group version once, (B, P, P + 2);
        any other is given the groups before every position, (B, P, width, d)."""
        policy = self.model.policy
        if policy.reads_allocation:
            raise NotImplementedError(
                "replay of a learned join rule that reads the allocation so far"
            )
        batch, positions = num_groups.shape
        items, item_terms = state.step_items, state.step_policy_terms
        if detach_inputs:  # as JoinQuery.detached: the item side recomputed from the detached item
            items = items.detach()
            item_terms = policy.item_terms(items)
            versions = replace(versions, vectors=versions.vectors.detach())
        scores = policy.version_logits(item_terms, versions.vectors)
        if scores is not None:
            scores = scores.gather(2, versions.before[..., :width])
            logits = policy.slot_logits_of(
                scores.reshape(batch * positions, width), num_groups.reshape(-1), self.max_groups
            )
        else:
            query = JoinQuery(
                items=items.reshape(batch * positions, -1),
                item_terms=item_terms.reshape(batch * positions, -1),
                group_reprs=versions.states(width).reshape(batch * positions, width, -1),
                num_groups=num_groups.reshape(-1),
                maps=state.policy_maps,
            )
            logits = policy.slot_logits(query, self.max_groups)
        return logits.view(batch, positions, self.max_groups)

    def observe(self, state: AllocationState) -> dict[str, torch.Tensor]:
        """Fixed-shape observation tensors (see :class:`AllocationEnv` for the space),
        with what the join rule needs beyond them (:meth:`JoinRule.observe`)."""
        return {
            "item": state.current_items,
            "groups": state.group_reprs,
            "group_mask": state.group_mask.to(state.group_reprs.dtype),
            "user": state.user_embs,
            "is_target": state.at_target.to(state.group_reprs.dtype)[:, None],
            **(self.model.policy.observe(self.join_query(state)) if self._rule_observes else {}),
        }

    def allocate_history(self, samples: Samples, choose_actions=None) -> AllocationState:
        """Allocate each history with ``choose_actions(state) -> (B,)``; stop before the target.

        The default is section 3.3's argmax of the paper's policy. Episodes
        whose history is done wait at their target while longer ones go on.
        """
        if choose_actions is None:
            choose_actions = lambda state: self.policy_logits(state).argmax(dim=1)  # noqa: E731
        state = self.reset(samples)
        # the longest history sets the steps: one host sync, not one per step
        for _ in range(int((state.target_position - state.cursor).max())):
            waiting = state.at_target
            stepped, _ = self.step(state, choose_actions(state))
            state = stepped.where(waiting, state)
        return state

    def allocate_history_greedily(self, samples: Samples) -> AllocationState:
        """Section 3.3: allocate each history by argmax actions; stop before the target."""
        return self.allocate_history(samples)
