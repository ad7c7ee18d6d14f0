"""The paper's learner: REINFORCE jointly with the recommender (Eq. 18-21, Algorithm 1).

For a mini-batch of samples the policy allocates every history item and the
target with sampled actions. Then

* ``L_seq`` (Eq. 20): cross-entropy of ``p_a . E`` over all items, where p_a
  is the group chosen for the target;
* ``L_rl`` (Eq. 19): ``-sum_T G_T log pi(a_T | s_T)`` with the discounted
  returns ``G_T`` of Eq. 18 (summed over steps, averaged over episodes);
* ``L = L_seq + beta * L_rl`` (Eq. 21), one Adam step on all parameters.

Beyond the paper (off by default): ``--reinforce-baseline batch_mean``
subtracts from each return the mean return of the batch's episodes at the same
step, and ``--reinforce-baseline greedy`` the return the same episode earns
under the argmax policy at that step (self-critical: Rennie et al., 2017), so
that only what a sampled allocation earns beyond the allocation prediction
makes is reinforced. Neither depends on the sampled actions, so the gradient
stays unbiased and its variance falls; the greedy one also removes what the
sample itself is worth (a hard target is hard whatever the allocation).
``--rl-gradient policy`` stops L_rl at the policy's inputs (see
:meth:`Agent.policy_logits`); ``--seq-rollout greedy`` trains L_seq on a
second, argmax rollout (see :meth:`Agent.sequence_rollout`), which the greedy
baseline then reuses.
"""

from __future__ import annotations

import torch

from adasplit_env.data.split import Samples
from adasplit_env.rewards import discounted_returns
from agents.base import Agent, Rollout, run_episodes
from agents.baselines import REINFORCE_BASELINES, ReturnBaseline


class ReinforceAgent(Agent):
    name = "reinforce"

    def __init__(self, process, config) -> None:
        super().__init__(process, config)
        name = config.learner.reinforce_baseline
        self.return_baseline: ReturnBaseline = REINFORCE_BASELINES[name]()

    def loss(self, batch: Samples, generator: torch.Generator | None = None):
        if self.config.learner.train_path == "parallel":
            return self.parallel_loss(batch, generator)
        rollout = run_episodes(
            self.process,
            batch,
            self.policy_logits,
            generator=generator,
            allocation_terms=self.allocation_terms_needed,
        )
        seq_rollout = self.sequence_rollout(rollout, batch)
        greedy_rollout = self.baseline_rollout(rollout, batch, seq_rollout)
        seq_loss = self.sequence_loss(seq_rollout, batch)
        return self._losses(rollout, rollout.log_probs, greedy_rollout, seq_loss)

    def parallel_loss(self, batch: Samples, generator: torch.Generator | None = None):
        """The same loss as the sequential path (``--train-path parallel``): the
        allocation is sampled by a rollout without gradients, then
        :meth:`AllocationProcess.replay` computes what the loss differentiates (the
        groups, every step's log-probability, the target's log-likelihood) in one pass
        over the sampled allocation. The encoders run once, for both. The likelihood
        reward is the replay's log-likelihood, detached, and Eq. 14-15 are the replay's
        too (every position in a few products, not a dozen operators a step; skipped in
        an update whose stats are not logged where no reward weighs them); the creation
        penalty comes from the rollout. Equal to the sequential loss and
        gradients for the same allocation (``tests/test_parallel.py``)."""
        process = self.process
        weight = process.rewards.likelihood_reward
        greedy_seq = self.config.learner.seq_rollout == "greedy"
        start = process.reset(batch)
        # inference mode, not just no_grad: no version counters or view tracking in the
        # step loop (about 2 ms of an update on a CPU). Inference tensors may not be saved
        # for backward; the replay reads the rollout's only where nothing saves them
        with torch.inference_mode():
            rollout = run_episodes(
                process,
                batch,
                self.policy_logits,
                generator=generator,
                start=start,
                score_target=False,
                allocation_terms=False,
            )
        detach = self.config.learner.rl_gradient == "policy"
        allocation_terms = self.allocation_terms_needed
        replay = process.replay(
            start,
            rollout.final_state.assignments,
            detach_policy_inputs=detach,
            score_target=weight > 0 or not greedy_seq,
            allocation_terms=allocation_terms,
        )
        steps = rollout.active.shape[1]
        if allocation_terms:
            replayed = {
                "allocation": replay.by_step(replay.allocation_reward, start.cursor, steps),
                "orthogonality": replay.by_step(replay.orthogonality_reward, start.cursor, steps),
            }
            rollout = rollout.with_terms(replayed, process.rewards)
        if weight > 0:
            rollout = rollout.with_target_log_likelihood(
                replay.target_log_likelihood, process.rewards
            )
        seq_replay = replay
        greedy_rollout = None
        if greedy_seq or self.return_baseline.needs_greedy_rollout:
            # the argmax allocation; its likelihood is scored here only when no replay
            # of it (the greedy L_seq's) will compute it with its graph anyway
            with torch.no_grad():
                greedy_rollout = run_episodes(
                    process,
                    batch,
                    self.policy_logits,
                    greedy=True,
                    start=start,
                    score_target=not greedy_seq,
                )
        if greedy_seq:
            seq_replay = process.replay(start, greedy_rollout.final_state.assignments)
            if weight > 0:
                greedy_rollout = greedy_rollout.with_target_log_likelihood(
                    seq_replay.target_log_likelihood, process.rewards
                )
        log_probs = replay.by_step(replay.log_probs, start.cursor, steps)
        seq_loss = -seq_replay.target_log_likelihood.mean()
        return self._losses(rollout, log_probs, greedy_rollout, seq_loss)

    def _losses(self, rollout, log_probs, greedy_rollout, seq_loss):
        """Eq. 19-21 from the rollout's rewards, its (B, T) log-probabilities and L_seq."""
        advantages = self.advantages(rollout, greedy_rollout)
        rl_loss = -(advantages * log_probs).sum(dim=1).mean()
        loss, stats = self.joint_loss(rollout, seq_loss, rl_loss)
        if greedy_rollout is not None and self.log_stats:
            # an episode's return (as charts/episode_return) less the argmax episode's
            gap = rollout.rewards.detach().sum(1) - greedy_rollout.rewards.detach().sum(1)
            stats["charts/return_over_greedy"] = gap.mean().item()
        return loss, stats

    def baseline_rollout(
        self, rollout: Rollout, batch: Samples, seq_rollout: Rollout
    ) -> Rollout | None:
        """The argmax rollout of ``batch`` the baseline reads (None for baselines that
        read none): ``seq_rollout`` when it is one (``seq_rollout greedy``), else a new
        one, without gradients."""
        if not self.return_baseline.needs_greedy_rollout:
            return None
        if seq_rollout is not rollout:
            return seq_rollout
        with torch.no_grad():
            return run_episodes(self.process, batch, self.policy_logits, greedy=True)

    def advantages(self, rollout: Rollout, greedy_rollout: Rollout | None = None) -> torch.Tensor:
        """(B, T) what multiplies ``log pi(a_T | s_T)`` in L_rl: the returns ``G_T`` of
        Eq. 18 less the chosen baseline (:mod:`agents.baselines`; zero once an episode
        is over)."""
        returns = discounted_returns(rollout.rewards.detach(), self.config.learner.lambda_d)
        baseline = self.return_baseline.values(
            returns, rollout, greedy_rollout, self.config.learner.lambda_d
        )
        return returns - baseline
