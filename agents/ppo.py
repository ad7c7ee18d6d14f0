"""PPO through Stable-Baselines3: sb3-contrib's MaskablePPO on the Gymnasium face.

MaskablePPO drives :class:`AllocationSB3VecEnv` (B episodes of the one
process). Its policy is the paper's: :class:`PaperPolicyExtractor` computes
Eq. 12-13 and Eq. 7-8 from the observation with the recommender's own policy
head (shared, so the section-3.3 scorer ranks with what PPO learned), and
:class:`SlotLogitsPolicy` reads those slot logits as the action logits. The
value net reads the same features. The recommender (embeddings, encoder,
group updater) is trained from the collected episodes in a callback: each
finished episode is replayed through the process with its recorded actions
and ``L_seq`` (Eq. 20) is minimised, as in REINFORCE.

Any other SB3-style algorithm that takes a ``VecEnv`` can be plugged in the
same way: subclass :class:`SB3Agent` and override :meth:`SB3Agent.build_algorithm`.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from adasplit_env.envs.core import EnvParts
from adasplit_env.envs.sb3_vec_env import AllocationSB3VecEnv
from adasplit_env.model.join_rules import JoinRule
from agents.base import REWARD_TERMS, Agent, TrainingContext, mean_pair_cosine, run_episodes

# below MaskablePPO's own mask value (-1e8), so a slot the rule excludes stays at 0
_EXCLUDED_LOGIT = -1e9


class PaperPolicyExtractor(BaseFeaturesExtractor):
    """Features ``[slot logits (G) ; critic features]`` from the recommender's join rule.

    The slot logits are :meth:`JoinRule.observation_logits`: the logits the MDP's own
    steps use (Eq. 7-8, 12-13 for the paper's rule), so PPO trains and evaluation
    allocates by one policy, whatever the rule. The critic features are
    :meth:`JoinRule.critic_features` (Eq. 12's ``s_T`` for the paper's rule). A slot
    the rule excludes (-inf) gets a finite floor, far below any logit, as SB3's
    distributions need; MaskablePPO masks the invalid slots out on top.
    """

    def __init__(self, observation_space: spaces.Dict, policy_head: JoinRule):
        groups, _ = observation_space["groups"].shape
        super().__init__(observation_space, features_dim=groups + policy_head.feature_dim)
        self.num_slots = groups
        self.policy_head = policy_head

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        head = self.policy_head
        query = head.query_of_observation(observations)
        logits = head.observation_logits(observations, query)
        features = head.critic_features(query)
        return torch.cat([torch.nan_to_num(logits, neginf=_EXCLUDED_LOGIT), features], dim=1)


class _FirstColumns(nn.Module):
    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return latent[:, : self.count]


class _Detached(nn.Module):
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.detach()


class SlotLogitsPolicy(MaskableMultiInputActorCriticPolicy):
    """Actor = the extractor's slot logits as they are (no extra layer); critic = an MLP.

    The critic reads the features detached: the value loss must not bend the
    shared policy head, which the section-3.3 scorer also uses.
    """

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = _FirstColumns(self.features_extractor.num_slots)
        self.mlp_extractor.value_net = nn.Sequential(_Detached(), self.mlp_extractor.value_net)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


class _RecommenderCallback(BaseCallback):
    """After each rollout: log the finished episodes and train the recommender on them."""

    def __init__(self, agent: SB3Agent) -> None:
        super().__init__()
        self.agent = agent

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.agent.learn_from_finished_episodes()


class SB3Agent(Agent):
    """Base for Stable-Baselines3 learners: SB3 optimises the policy, we the recommender."""

    name = "sb3"

    def __init__(self, process, config) -> None:
        super().__init__(process, config)
        self.trainer = None
        self.algorithm = None

    def build_algorithm(self, env: AllocationSB3VecEnv):
        raise NotImplementedError(f"{type(self).__name__} must implement build_algorithm()")

    def setup(self, trainer: TrainingContext) -> None:
        self.trainer = trainer
        parts = EnvParts(trainer.dataset, self.process, trainer.train_samples)
        self.env = AllocationSB3VecEnv(
            parts, self.config.learner.ppo_num_envs, seed=self.config.seed
        )
        self.algorithm = self.build_algorithm(self.env)
        self.sb3_policy = self.algorithm.policy  # registered: checkpointed with the agent
        # SB3's own scalars (train/..., rollout/...) next to ours in the run dir.
        self.algorithm.set_logger(configure(str(trainer.run_dir), ["tensorboard"]))
        self._steps_per_epoch = int((trainer.train_samples.lengths + 1).sum())

    def trainable_parameters(self):
        # The policy head belongs to SB3's optimiser; ours trains the rest of the recommender.
        head = {id(p) for p in self.model.policy.parameters()}
        return [p for p in self.model.parameters() if id(p) not in head]

    def run_epoch(self, trainer: TrainingContext, epoch: int) -> None:
        """As many environment steps as the epoch's samples have (history items + targets)."""
        self._bar = trainer.progress_bar(None, epoch, total=self._steps_per_epoch)
        self.algorithm.learn(
            total_timesteps=self._steps_per_epoch,
            callback=_RecommenderCallback(self),
            reset_num_timesteps=False,
            progress_bar=False,
        )
        self._bar.close()

    def learn_from_finished_episodes(self) -> None:
        episodes, self.env.finished_episodes = self.env.finished_episodes, []
        if not episodes:
            return
        trainer, config = self.trainer, self.config
        self.model.train()
        steps = sum(int((e["assignments"] >= 0).sum()) for e in episodes)
        for start in range(0, len(episodes), config.batch_size):
            chunk = episodes[start : start + config.batch_size]
            indices = torch.tensor([e["sample_index"] for e in chunk])
            batch = trainer.train_samples.subset(indices)
            forced = torch.from_numpy(np.stack([e["assignments"] for e in chunk]))
            rollout = run_episodes(
                self.process, batch, self.process.policy_logits, forced_actions=forced
            )
            seq_loss = self.sequence_loss(self.sequence_rollout(rollout, batch), batch)
            logged = trainer.log_due()
            stats = self._episode_stats(chunk, steps, rollout, seq_loss) if logged else {}
            trainer.optimize(seq_loss, stats)
        self.model.eval()
        self._bar.update(steps)
        self._bar.set_postfix(trainer.bar_postfix())

    @staticmethod
    def _episode_stats(chunk: list[dict], steps: int, rollout, seq_loss: torch.Tensor) -> dict:
        """The logged statistics of one recommender update on ``chunk``'s episodes."""
        stats = {
            "losses/seq": seq_loss.item(),
            "losses/total": seq_loss.item(),
            "charts/episode_return": float(np.mean([e["return"] for e in chunk])),
            "groups/per_episode": float(np.mean([e["num_groups"] for e in chunk])),
            "groups/creation_rate": float(sum(e["created"] for e in chunk) / max(1, steps)),
            "groups/pair_cosine": mean_pair_cosine(rollout.final_state),
            # the entropy of PPO's policy (the shared head) on these episodes' states
            "policy/entropy": (
                (rollout.entropies.detach() * rollout.active).sum() / rollout.active.sum()
            ).item(),
            "hist/groups_per_episode": torch.tensor([e["num_groups"] for e in chunk]),
        }
        for term in REWARD_TERMS:
            stats[f"rewards/{term}"] = float(np.mean([e[f"{term}_reward"] for e in chunk]))
        return stats

    def loss(self, batch, generator=None):
        raise NotImplementedError("SB3 agents train through run_epoch(), not per-batch losses")


class PPOAgent(SB3Agent):
    """``--algo ppo``: MaskablePPO with the paper's policy architecture."""

    name = "ppo"

    def build_algorithm(self, env: AllocationSB3VecEnv):
        config = self.config
        return MaskablePPO(
            SlotLogitsPolicy,
            env,
            learning_rate=config.lr,
            n_steps=config.learner.ppo_n_steps,
            batch_size=config.batch_size,
            n_epochs=config.learner.ppo_epochs,
            gamma=config.learner.lambda_d,
            gae_lambda=config.learner.gae_lambda,
            clip_range=config.learner.ppo_clip,
            ent_coef=config.learner.entropy_coef,
            vf_coef=config.learner.value_coef,
            seed=config.seed,
            device=self.trainer.device,
            policy_kwargs={
                "features_extractor_class": PaperPolicyExtractor,
                "features_extractor_kwargs": {"policy_head": self.model.policy},
                "net_arch": {"pi": [], "vf": [64, 64]},
            },
            verbose=0,
        )
