"""What the Gymnasium faces share: building the parts, and B episodes in numpy.

:class:`EpisodeBatch` keeps B episodes of the one :class:`AllocationProcess`
and converts to and from numpy; the single env (B = 1), the Gymnasium vector
env and the SB3 VecEnv differ only in how they reset finished episodes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding

from adasplit_env.checkpoint import load_checkpoint
from adasplit_env.data.datasets import Dataset, load_dataset
from adasplit_env.data.split import Samples
from adasplit_env.errors import ConfigError
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import ModelConfig, RewardConfig
from adasplit_env.process import AllocationProcess, AllocationState
from adasplit_env.rewards import REWARD_TERMS

SPLITS = ("train", "val", "test")
REWARD_KEYS = tuple(f"{term}_reward" for term in REWARD_TERMS)
INFO_KEYS = ("num_groups", "created", *REWARD_KEYS, "chosen_group", "was_target")


@dataclass
class EnvParts:
    dataset: Dataset
    process: AllocationProcess
    samples: Samples


def build_env_parts(
    dataset: str | Dataset = "synthetic",
    data_dir: str | None = None,
    split: str = "train",
    model: AdaSplitModel | None = None,
    checkpoint: str | None = None,
    rewards: RewardConfig | dict | None = None,
    model_seed: int = 0,
    device: str = "cpu",
    **model_options,
) -> EnvParts:
    """Resolve the dataset, the model (given, from a checkpoint, or new) and the samples.

    ``model_options`` are :class:`ModelConfig` fields (dim, max_len, eps, ...)
    used when a new model is built.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    unknown = sorted(set(model_options) - {field.name for field in fields(ModelConfig)})
    if unknown:  # Python's own words: clients (TorchRL) retry without an option on them
        raise TypeError(f"AllocationEnv got an unexpected keyword argument {unknown[0]!r}")
    if checkpoint is not None:
        loaded = load_checkpoint(checkpoint, data_dir=data_dir, device=device)
        model, dataset = loaded.model, loaded.dataset
        if rewards is None:
            rewards = loaded.rewards
    model_given = model is not None
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, data_dir)
    if isinstance(rewards, dict):
        rewards = RewardConfig.from_dict(rewards)
    if model is None:
        config = ModelConfig(
            num_users=dataset.num_users, num_items=dataset.num_items, **model_options
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(model_seed)
            model = AdaSplitModel(config)
        model.policy.fit(dataset.split, seed=model_seed)
    elif not isinstance(model, AdaSplitModel):
        raise ConfigError(
            f"the allocation env needs an AdaSplit model, not {type(model).__name__} "
            "(baseline checkpoints have no allocation policy)"
        )
    elif model_options:
        raise ConfigError(
            f"model options {sorted(model_options)} cannot be combined with a given model"
        )
    if model.config.num_items != dataset.num_items or model.config.num_users != dataset.num_users:
        raise ConfigError(
            f"the model is for {model.config.num_users} users and {model.config.num_items} "
            f"items, the dataset has {dataset.num_users} and {dataset.num_items}"
        )
    if not model_given:
        model.eval()  # a model of the env's own: no dropout, no mode switches per step
    model.to(device)
    max_len = model.config.max_len
    samples = (
        dataset.split.train_samples(max_len)
        if split == "train"
        else dataset.split.eval_samples(split, max_len)
    )
    return EnvParts(dataset, AllocationProcess(model, rewards), samples)


def observation_space(process: AllocationProcess) -> spaces.Dict:
    """Fixed-shape float32 observation of one episode (the default layout), with the
    entries the join rule reads beyond the item and the groups
    (:meth:`~adasplit_env.model.join_rules.JoinRule.observation_fields`)."""
    dim, groups = process.model.config.dim, process.max_groups
    unbounded = dict(low=-np.inf, high=np.inf, dtype=np.float32)
    return spaces.Dict(
        {
            "item": spaces.Box(shape=(dim,), **unbounded),  # v_T (or e_target)
            "groups": spaces.Box(shape=(groups, dim), **unbounded),  # p_i, zero when empty
            "group_mask": spaces.Box(0.0, 1.0, shape=(groups,), dtype=np.float32),
            "user": spaces.Box(shape=(dim,), **unbounded),  # e_u
            "is_target": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            **process.model.policy.observation_fields(groups, dim),
        }
    )


@dataclass(frozen=True)
class ObservationLayout:
    """How the process's state is shown to a client.

    - default: the :func:`observation_space` Dict;
    - ``mask_in_observation``: that Dict plus ``action_mask`` (bool, max_groups),
      the valid actions, where TorchRL's ``ActionMask`` reads them;
    - ``flat``: one float32 vector, the Dict's fields in its key order as
      :func:`gymnasium.spaces.flatten` lays them out, for MLP policies;
    - both: ``{"observation": <the flat vector>, "action_mask": <bool>}``, the
      layout of masked envs in TorchRL, PettingZoo and Tianshou recipes.
    """

    fields_space: spaces.Dict
    mask_in_observation: bool = False
    flat: bool = False

    @classmethod
    def of(
        cls, process: AllocationProcess, mask_in_observation: bool = False, flat: bool = False
    ) -> ObservationLayout:
        return cls(observation_space(process), mask_in_observation, flat)

    @property
    def space(self) -> spaces.Space:
        shown = spaces.flatten_space(self.fields_space) if self.flat else self.fields_space
        if not self.mask_in_observation:
            return shown
        mask = spaces.Box(0, 1, shape=(self.fields_space["group_mask"].shape[0],), dtype=np.bool_)
        if self.flat:
            return spaces.Dict({"observation": shown, "action_mask": mask})
        return spaces.Dict({**self.fields_space.spaces, "action_mask": mask})

    def encode(
        self, fields: dict[str, torch.Tensor], action_mask: np.ndarray | None
    ) -> dict[str, np.ndarray] | np.ndarray:
        """(B, ...) numpy observations from the process's (B, ...) tensors; the mask is
        read only by a layout that shows it (None is fine otherwise)."""
        arrays = {  # a copy, never a view of the process's tensors
            key: fields[key].detach().cpu().numpy().astype(np.float32, copy=True)
            for key in self.fields_space.spaces
        }
        if self.flat:
            rows = arrays["item"].shape[0]
            flat = np.concatenate([value.reshape(rows, -1) for value in arrays.values()], axis=1)
            if not self.mask_in_observation:
                return flat
            arrays = {"observation": flat}
        if self.mask_in_observation:
            arrays["action_mask"] = action_mask.astype(np.bool_)
        return arrays


@contextlib.contextmanager
def inference_mode(model: torch.nn.Module):
    """No gradients and no dropout while the env steps; restores the training flag."""
    was_training = model.training
    if was_training:  # switching walks every module: only when needed
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


class EpisodeBatch:
    """B episodes of the process over a pool of samples, numpy in and out."""

    def __init__(
        self, parts: EnvParts, batch_size: int, layout: ObservationLayout | None = None
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"the number of environments must be >= 1, got {batch_size}")
        self.parts = parts
        self.layout = layout if layout is not None else ObservationLayout.of(parts.process)
        self.process = parts.process
        self.batch_size = batch_size
        self.sample_indices = np.zeros(batch_size, dtype=np.int64)
        self.state: AllocationState | None = None
        # One sample-drawing generator per episode row, as Gymnasium seeds sub-envs.
        self.generators = [seeding.np_random(None)[0] for _ in range(batch_size)]

    def seed_row(self, row: int, seed: int | None) -> None:
        self.generators[row] = seeding.np_random(seed)[0]

    def draw(self, rows: np.ndarray) -> np.ndarray:
        """A random sample index for each of ``rows``, from that row's generator."""
        return np.array(
            [int(self.generators[r].integers(self.num_samples)) for r in rows], dtype=np.int64
        )

    @property
    def num_samples(self) -> int:
        return len(self.parts.samples)

    def start(self, rows: np.ndarray, sample_indices: np.ndarray) -> None:
        """(Re)start the episodes in ``rows`` on the given samples."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        sample_indices = np.asarray(sample_indices, dtype=np.int64)
        if np.any(sample_indices < 0) or np.any(sample_indices >= self.num_samples):
            raise ConfigError(f"sample index out of range [0, {self.num_samples})")
        self.sample_indices[rows] = sample_indices
        with inference_mode(self.process.model):
            fresh = self.process.reset(self.parts.samples.subset(torch.from_numpy(sample_indices)))
        if self.state is None:
            if not np.array_equal(rows, np.arange(self.batch_size)):
                raise RuntimeError("the first start must cover every row, in order")
            self.state = fresh
        else:
            self.state = self.state.replace_rows(torch.from_numpy(rows), fresh)

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Step every episode; returns rewards, done flags and the info arrays."""
        actions_t = torch.as_tensor(np.asarray(actions, dtype=np.int64))
        with inference_mode(self.process.model):
            self.state, out = self.process.step(self.state, actions_t.to(self.process.device))
        return {
            "reward": out.reward.float().cpu().numpy(),
            "done": out.done.cpu().numpy(),
            "num_groups": self.state.num_groups.cpu().numpy(),
            "created": out.created.cpu().numpy(),
            **{
                f"{term}_reward": value.float().cpu().numpy()
                for term, value in out.reward_terms().items()
            },
            "chosen_group": out.chosen.cpu().numpy(),
            "was_target": out.was_target.cpu().numpy(),
        }

    def observation(self) -> dict[str, np.ndarray] | np.ndarray:
        """(B, ...) observations in the batch's :class:`ObservationLayout`."""
        mask = self.action_mask() if self.layout.mask_in_observation else None
        return self.layout.encode(self.process.observe(self.state), mask)

    def action_mask(self) -> np.ndarray:
        """(B, G) int8: joins 0..h-1 plus create at slot h."""
        return self.state.action_mask.cpu().numpy().astype(np.int8)

    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.batch_size,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"expected {self.batch_size} integer action(s), got {actions!r}")
        bad = (actions < 0) | (actions >= self.process.max_groups)
        if bad.any():
            raise ValueError(
                f"action {int(actions[bad][0])} is outside the action space "
                f"Discrete({self.process.max_groups})"
            )
        return actions
