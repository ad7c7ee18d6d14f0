"""A native Gymnasium vector env: B episodes of the one process per call.

``reset(seed=s)`` seeds sub-env i with ``s + i`` (as Gymnasium's SyncVectorEnv
does), so sub-env i replays exactly what ``AllocationEnv`` does with seed
``s + i``. Autoreset follows Gymnasium 1.x's default, next-step mode: the
step after an episode ends restarts that sub-env, ignores its action and
returns reward 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adasplit_env.data.datasets import Dataset
from adasplit_env.envs.allocation_env import render_episode
from adasplit_env.envs.core import INFO_KEYS, EpisodeBatch, build_env_parts, observation_space
from adasplit_env.model.adasplit import AdaSplitModel


class AllocationVectorEnv(VectorEnv):
    """``num_envs`` allocation episodes stepped together (same arguments as AllocationEnv)."""

    metadata = {
        "render_modes": ["ansi"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        dataset: str | Dataset = "synthetic",
        data_dir: str | None = None,
        split: str = "train",
        model: AdaSplitModel | None = None,
        checkpoint: str | None = None,
        rewards: Any = None,
        model_seed: int = 0,
        device: str = "cpu",
        render_mode: str | None = None,
        **model_options: Any,
    ) -> None:
        self.parts = build_env_parts(
            dataset,
            data_dir,
            split,
            model,
            checkpoint,
            rewards,
            model_seed,
            device,
            **model_options,
        )
        self.num_envs = num_envs
        self.episodes = EpisodeBatch(self.parts, num_envs)
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.parts.process)
        self.single_action_space = spaces.Discrete(self.parts.process.max_groups)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    @property
    def process(self):
        return self.parts.process

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is not None:
            seeds = seed if isinstance(seed, list) else [seed + i for i in range(self.num_envs)]
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
            for row, row_seed in enumerate(seeds):
                self.episodes.seed_row(row, row_seed)
        rows = np.arange(self.num_envs)
        if options and "sample_index" in options:
            indices = np.broadcast_to(
                np.asarray(options["sample_index"], dtype=np.int64), rows.shape
            )
        else:
            indices = self.episodes.draw(rows)
        self.episodes.start(rows, indices)
        self._needs_reset[:] = False
        return self.episodes.observation(), self._infos(None)

    def step(self, actions):
        actions = self.episodes.check_actions(np.asarray(actions).reshape(self.num_envs))
        result = self.episodes.step(actions)
        rewards = result["reward"]
        terminated = result["done"].copy()
        restart = np.flatnonzero(self._needs_reset)
        if restart.size:
            # Those episodes were over: step() left them frozen; start anew.
            self.episodes.start(restart, self.episodes.draw(restart))
            rewards[restart] = 0.0
            terminated[restart] = False
        self._needs_reset = terminated.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        return (
            self.episodes.observation(),
            rewards,
            terminated,
            truncated,
            self._infos(result, restart),
        )

    def action_masks(self) -> np.ndarray:
        """(num_envs, max_groups) bool valid actions."""
        return self.episodes.action_mask().astype(bool)

    def _infos(self, result: dict | None, restarted: np.ndarray | None = None) -> dict:
        state = self.episodes.state
        infos = {
            "action_mask": self.episodes.action_mask(),
            "sample_index": self.episodes.sample_indices.copy(),
            "is_target": state.at_target.cpu().numpy(),
        }
        if result is not None:
            fresh = np.zeros(self.num_envs, dtype=bool)
            if restarted is not None:
                fresh[restarted] = True
            for key in INFO_KEYS:
                infos[key] = result[key].copy()
                infos[f"_{key}"] = ~fresh  # no step info for sub-envs that just restarted
            infos["num_groups"] = state.num_groups.cpu().numpy()
        for key in ("action_mask", "sample_index", "is_target"):
            infos[f"_{key}"] = np.ones(self.num_envs, dtype=bool)
        return infos

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode != "ansi":
            return None
        return tuple(render_episode(self.episodes, row) for row in range(self.num_envs))
