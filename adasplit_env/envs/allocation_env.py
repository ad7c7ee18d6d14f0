"""``AdaSplit/Allocation-v0``: one episode of the allocation MDP at a time.

A thin face of :class:`adasplit_env.process.AllocationProcess` with B = 1.
One episode is one sample (user, history, target): the agent allocates the
history items one by one and then the target.

Observation (``Dict`` of float32 arrays): ``item`` (d) the item to allocate
(its encoder vector ``v_T``, or the raw embedding at the target step),
``groups`` (max_groups, d) the group representations (zeros in empty slots),
``group_mask`` (max_groups), ``user`` (d) ``e_u``, ``is_target`` (1).

With ``mask_in_observation=True`` the observation also holds ``action_mask``
(bool, max_groups); with ``flat_observation=True`` it is one float32 vector
(the Dict's fields in key order, as :func:`gymnasium.spaces.flatten` lays them
out), for MLP policies.

Action ``Discrete(max_groups)``, read as slots: ``a < h`` joins group a, any
``a >= h`` creates group h. ``info["action_mask"]`` and :meth:`action_masks`
give the canonical valid set (joins plus create at slot h while h < max_groups).

Render modes: ``ansi`` (the paper's Figure 3 as text), ``human`` (that text
printed at every reset and step), ``rgb_array`` (the same as a picture: one
cell per position, coloured by its group; a second row by the planted interest
where the dataset has one).
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from adasplit_env.data.datasets import Dataset
from adasplit_env.envs.core import REWARD_KEYS, EpisodeBatch, ObservationLayout, build_env_parts
from adasplit_env.model.adasplit import AdaSplitModel


class AllocationEnv(gym.Env):
    """The behaviour-allocation MDP of AdaSplit as a Gymnasium environment.

    Args:
        dataset: a dataset name (``synthetic``, ``garden``, ...), a file path, or a
            loaded :class:`~adasplit_env.data.Dataset`.
        data_dir: where named datasets live (default ``$ADASPLIT_DATA``, else ``./data``).
        split: which samples episodes are drawn from: ``train`` (every training
            prefix), ``val`` or ``test`` (one per user).
        model: an existing :class:`AdaSplitModel` to share (a trainer's); the env
            reads its current weights at every reset.
        checkpoint: a ``.pt`` checkpoint written by ``train_agent.py``.
        rewards: a :class:`RewardConfig` or dict (``lambda_o``, ``curriculum``, ``penalty``).
        model_seed: seed of a newly built model.
        device: torch device of the model.
        render_mode: ``"ansi"``, ``"human"``, ``"rgb_array"`` or None.
        mask_in_observation: add the valid actions to the observation as a bool
            ``action_mask`` field (TorchRL's ``ActionMask``, Tianshou).
        flat_observation: one flat float32 vector instead of the Dict (MLP policies).
        **model_options: :class:`ModelConfig` fields for a new model (``dim``,
            ``max_len``, ``max_groups``, ``eps``, ``encoder``, ``group_updater`` ...).
    """

    metadata = {"render_modes": ["ansi", "human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
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
        **model_options: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
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
        layout = ObservationLayout.of(self.parts.process, mask_in_observation, flat_observation)
        self.episodes = EpisodeBatch(self.parts, 1, layout)
        self.observation_space = layout.space
        self.action_space = spaces.Discrete(self.parts.process.max_groups)

    @property
    def process(self):
        return self.parts.process

    @property
    def dataset(self) -> Dataset:
        return self.parts.dataset

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode on a random sample (``options={"sample_index": i}`` picks one)."""
        super().reset(seed=seed)
        if options and "sample_index" in options:
            index = int(options["sample_index"])
        else:
            index = int(self.np_random.integers(self.episodes.num_samples))
        self.episodes.start(np.array([0]), np.array([index]))
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info(None)

    def step(self, action):
        if self.episodes.state is None:
            raise RuntimeError("call reset() before step()")
        if bool(self.episodes.state.done[0]):
            raise RuntimeError("the episode is over; call reset()")
        action_array = np.asarray(action)
        if action_array.size != 1:
            raise ValueError(f"expected one action, got {action!r}")
        result = self.episodes.step(self.episodes.check_actions(action_array.reshape(1)))
        if self.render_mode == "human":
            self.render()
        return (
            self._observation(),
            float(result["reward"][0]),
            bool(result["done"][0]),
            False,
            self._info(result),
        )

    def action_masks(self) -> np.ndarray:
        """Valid actions as a bool array (sb3-contrib's MaskablePPO reads this)."""
        return self.episodes.action_mask()[0].astype(bool)

    def _observation(self) -> dict[str, np.ndarray] | np.ndarray:
        observation = self.episodes.observation()
        if isinstance(observation, dict):
            return {key: value[0] for key, value in observation.items()}
        return observation[0]

    def _info(self, result: dict | None) -> dict[str, Any]:
        state = self.episodes.state
        info: dict[str, Any] = {
            "action_mask": self.episodes.action_mask()[0],
            "num_groups": int(state.num_groups[0]),
            "sample_index": int(self.episodes.sample_indices[0]),
            "is_target": bool(state.at_target[0]),
        }
        if result is not None:
            info.update(
                created=bool(result["created"][0]),
                chosen_group=int(result["chosen_group"][0]),
                **{key: float(result[key][0]) for key in REWARD_KEYS},
            )
        return info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                "render() needs a render_mode: 'ansi', 'human' or 'rgb_array' (gym.make(..., render_mode=...))"
            )
            return None
        return render_row(self.episodes, 0, self.render_mode)


def check_render_mode(render_mode: str | None, render_modes: list[str]) -> None:
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(
            f"unknown render_mode {render_mode!r}; use one of {', '.join(render_modes)} or None"
        )


def render_row(episodes: EpisodeBatch, row: int, render_mode: str) -> str | np.ndarray | None:
    """One episode of a batch in a Gymnasium render mode (``human`` prints, returns None)."""
    if render_mode == "rgb_array":
        return render_image(episodes, row)
    text = render_episode(episodes, row)
    if render_mode == "human":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    return text


def render_episode(episodes: EpisodeBatch, row: int) -> str:
    """Figure 3 as text for one episode of an :class:`EpisodeBatch`."""
    if episodes.state is None:
        return "(no episode; call reset())\n"
    return render_allocation(
        episodes.parts.dataset, episodes.state, row, f"sample {int(episodes.sample_indices[row])}"
    )


def render_allocation(dataset: Dataset, state, row: int, note: str = "") -> str:
    """The user's history with each item's group so far (the paper's Figure 3 as text)."""
    raw_items = dataset.sequences.item_raw_ids
    planted = dataset.item_groups
    user = int(state.users[row])
    ids = state.step_item_ids[row].tolist()
    assigned = state.assignments[row].tolist()
    cursor = int(state.cursor[row])
    target_at = state.target_position
    header = f"user {dataset.sequences.user_raw_ids[user]} (id {user}), {int(state.num_groups[row])} group(s)"
    lines = [header + (f", {note}" if note else "")]
    for position, (item, group) in enumerate(zip(ids, assigned)):
        if item == 0:
            continue
        label = "target " if position == target_at else "history"
        truth = f" [planted {int(planted[item])}]" if planted is not None else ""
        where = f"group {group}" if group >= 0 else ("<- now" if position == cursor else "")
        lines.append(f"  {label} {position:>3}  item {raw_items[item]!s:<12}{truth:<14} {where}")
    return "\n".join(lines) + "\n"


CELL = 12  # pixels per position in the rgb_array picture
# Distinct colours for groups / planted interests (cycled past twelve).
PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
        (0, 0, 128), (128, 0, 0),
    ],
    dtype=np.uint8,
)  # fmt: skip
UNALLOCATED, PADDING, CURSOR = (220, 220, 220), (255, 255, 255), (0, 0, 0)


def render_image(episodes: EpisodeBatch, row: int) -> np.ndarray:
    """(H, W, 3) uint8 picture of one episode: a cell per position (history, then the
    target), coloured by its group (light grey: not allocated yet, white: padding),
    the cell now being allocated outlined in black; below it, where the dataset
    plants interests, each item's planted interest in the same palette."""
    positions = episodes.process.model.config.max_len + 1
    planted = episodes.parts.dataset.item_groups
    rows = 2 if planted is not None else 1
    image = np.full((rows * CELL, positions * CELL, 3), 255, dtype=np.uint8)
    state = episodes.state
    if state is None:
        return image
    ids = state.step_item_ids[row].tolist()
    assigned = state.assignments[row].tolist()
    cursor = int(state.cursor[row]) if not bool(state.done[row]) else -1
    for position, (item, group) in enumerate(zip(ids, assigned)):
        left = position * CELL
        cell = image[:CELL, left : left + CELL]
        if item == 0:
            cell[:] = PADDING
            continue
        cell[:] = PALETTE[group % len(PALETTE)] if group >= 0 else UNALLOCATED
        if position == cursor:
            cell[[0, -1], :] = CURSOR
            cell[:, [0, -1]] = CURSOR
        if planted is not None:
            image[CELL:, left : left + CELL] = PALETTE[int(planted[item]) % len(PALETTE)]
    return image
