"""Stable-Baselines3 ``VecEnv`` over the batched process (SB3 accepts no gymnasium.vector env).

SB3 semantics: a finished episode restarts inside the same ``step_wait``;
its last observation goes to ``infos[i]["terminal_observation"]``.
``env_method("action_masks")`` serves sb3-contrib's MaskablePPO.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from adasplit_env.envs.core import REWARD_KEYS, EnvParts, EpisodeBatch, ObservationLayout


class AllocationSB3VecEnv(VecEnv):
    """``num_envs`` allocation episodes as one SB3 VecEnv (build parts with
    :func:`adasplit_env.envs.core.build_env_parts`, or use :meth:`from_vector_env`)."""

    def __init__(
        self,
        parts: EnvParts,
        num_envs: int,
        seed: int | None = None,
        layout: ObservationLayout | None = None,
    ) -> None:
        self.parts = parts
        self.episodes = EpisodeBatch(parts, num_envs, layout)
        self.render_mode = None
        super().__init__(
            num_envs,
            self.episodes.layout.space,
            spaces.Discrete(parts.process.max_groups),
        )
        for row in range(num_envs):
            self.episodes.seed_row(row, None if seed is None else seed + row)
        self._actions: np.ndarray | None = None
        # Completed episodes' reward terms, for loggers (cleared by whoever reads them).
        self.finished_episodes: list[dict[str, float]] = []
        # per episode so far: the return, each reward term, groups created
        self._running = np.zeros((num_envs, len(REWARD_KEYS) + 2), dtype=np.float64)

    @classmethod
    def from_vector_env(cls, vector_env, seed: int | None = None) -> AllocationSB3VecEnv:
        return cls(vector_env.parts, vector_env.num_envs, seed, vector_env.episodes.layout)

    @property
    def process(self):
        return self.parts.process

    def reset(self):
        for row, seed in enumerate(self._seeds):
            if seed is not None:
                self.episodes.seed_row(row, seed)
        self._reset_seeds()
        self._reset_options()
        rows = np.arange(self.num_envs)
        self.episodes.start(rows, self.episodes.draw(rows))
        self._running[:] = 0.0
        return self.episodes.observation()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = self.episodes.check_actions(
            np.asarray(actions).reshape(self.num_envs).astype(np.int64)
        )

    def step_wait(self):
        result = self.episodes.step(self._actions)
        dones = result["done"]
        self._running += np.stack(
            [result["reward"], *(result[key] for key in REWARD_KEYS), result["created"]], axis=1
        )
        infos: list[dict[str, Any]] = [
            {
                "num_groups": int(result["num_groups"][i]),
                "created": bool(result["created"][i]),
                **{key: float(result[key][i]) for key in REWARD_KEYS},
            }
            for i in range(self.num_envs)
        ]
        finished = np.flatnonzero(dones)
        if finished.size:
            last = self.episodes.observation()
            assignments = self.episodes.state.assignments.cpu().numpy()
            for i in finished:
                infos[i]["terminal_observation"] = (
                    {k: v[i] for k, v in last.items()} if isinstance(last, dict) else last[i]
                )
                ret, *terms, created = self._running[i]
                self.finished_episodes.append(
                    {
                        "return": ret,
                        **dict(zip(REWARD_KEYS, terms)),
                        "num_groups": float(result["num_groups"][i]),
                        "created": created,
                        "sample_index": int(self.episodes.sample_indices[i]),
                        "assignments": assignments[i].copy(),
                    }
                )
                infos[i]["episode"] = {"r": ret, "l": int((assignments[i] >= 0).sum())}
            self._running[finished] = 0.0
            self.episodes.start(finished, self.episodes.draw(finished))
        return self.episodes.observation(), result["reward"].astype(np.float32), dones.copy(), infos

    def action_masks(self) -> np.ndarray:
        return self.episodes.action_mask().astype(bool)

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices=None, **method_kwargs
    ) -> list[Any]:
        rows = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in rows]
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in rows]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
