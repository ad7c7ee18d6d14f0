"""A native Gymnasium vector env: B episodes of the one process per call.

``reset(seed=s)`` seeds sub-env i with ``s + i`` (as Gymnasium's SyncVectorEnv
does), so sub-env i replays exactly what ``AllocationEnv`` does with seed
``s + i``. Autoreset follows Gymnasium 1.x's default, next-step mode: the
step after an episode ends restarts that sub-env, ignores its action and
returns reward 0. ``autoreset_mode="same-step"`` (or
``AutoresetMode.SAME_STEP``) restarts it within the step that ended it instead,
returning the new episode's first observation, with the last one in
``infos["final_obs"]`` and that step's infos in ``infos["final_info"]``, as
Gymnasium's ``SyncVectorEnv`` does in that mode.

``gymnasium.make_vec("AdaSplit/Allocation-v0", n, **kwargs)`` builds this class
(the id's ``vector_entry_point``); the ``sync``/``async`` modes build one model
and data set per sub-env instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adasplit_env.data.datasets import Dataset
from adasplit_env.envs.allocation_env import check_render_mode, render_row
from adasplit_env.envs.core import INFO_KEYS, EpisodeBatch, ObservationLayout, build_env_parts
from adasplit_env.errors import ConfigError
from adasplit_env.model.adasplit import AdaSplitModel


class AllocationVectorEnv(VectorEnv):
    """``num_envs`` allocation episodes stepped together (same arguments as AllocationEnv)."""

    metadata = {
        "render_modes": ["ansi", "human", "rgb_array"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }
    AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)

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
        mask_in_observation: bool = False,
        flat_observation: bool = False,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **model_options: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        autoreset_mode = self._autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
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
        layout = ObservationLayout.of(self.parts.process, mask_in_observation, flat_observation)
        self.episodes = EpisodeBatch(self.parts, num_envs, layout)
        self.render_mode = render_mode
        self.single_observation_space = layout.space
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

    @classmethod
    def _autoreset_mode(cls, mode: AutoresetMode | str) -> AutoresetMode:
        """An :class:`AutoresetMode`, or its value in any case with or without
        ``-``/``_`` (``"same-step"``, ``"SameStep"``)."""

        def plain(text: str) -> str:
            return text.lower().replace("-", "").replace("_", "")

        for known in cls.AUTORESET_MODES:
            if mode == known or (isinstance(mode, str) and plain(mode) == plain(known.value)):
                return known
        raise ConfigError(
            f"autoreset_mode {getattr(mode, 'value', mode)!r} is not supported; choose "
            + " or ".join(repr(known.value) for known in cls.AUTORESET_MODES)
        )

    @property
    def autoreset_mode(self) -> AutoresetMode:
        return self.metadata["autoreset_mode"]

    def step(self, actions):
        actions = self.episodes.check_actions(np.asarray(actions).reshape(self.num_envs))
        result = self.episodes.step(actions)
        rewards = result["reward"]
        terminated = result["done"].copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            ended = np.flatnonzero(terminated)
            final = None
            if ended.size:
                final_obs = np.full(self.num_envs, None, dtype=object)
                observation = self.episodes.observation()
                for row in ended:
                    final_obs[row] = _row_of(observation, row)
                final = (final_obs, self._infos(result), ended)
                self.episodes.start(ended, self.episodes.draw(ended))
            infos = self._infos(result, ended)
            if final is not None:
                infos["final_obs"], infos["_final_obs"] = (
                    final[0],
                    _rows_mask(final[2], self.num_envs),
                )
                infos["final_info"] = _only_rows(final[1], final[2], self.num_envs)
                infos["_final_info"] = _rows_mask(final[2], self.num_envs)
            return self.episodes.observation(), rewards, terminated, truncated, infos
        restart = np.flatnonzero(self._needs_reset)
        if restart.size:
            # Those episodes were over: step() left them frozen; start anew.
            self.episodes.start(restart, self.episodes.draw(restart))
            rewards[restart] = 0.0
            terminated[restart] = False
        self._needs_reset = terminated.copy()
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

    def render(self) -> tuple | None:
        """A tuple with each sub-env's render (``ansi``: text, ``rgb_array``: a picture);
        ``human`` prints them all and returns None."""
        if self.render_mode is None:
            return None
        renders = tuple(
            render_row(self.episodes, row, self.render_mode) for row in range(self.num_envs)
        )
        return None if self.render_mode == "human" else renders


def _row_of(observation, row: int):
    if isinstance(observation, dict):
        return {key: value[row] for key, value in observation.items()}
    return observation[row]


def _rows_mask(rows: np.ndarray, num_envs: int) -> np.ndarray:
    mask = np.zeros(num_envs, dtype=bool)
    mask[rows] = True
    return mask


def _only_rows(infos: dict, rows: np.ndarray, num_envs: int) -> dict:
    """The vector infos, each ``_key`` mask narrowed to ``rows``."""
    keep = _rows_mask(rows, num_envs)
    return {key: (value & keep if key.startswith("_") else value) for key, value in infos.items()}
