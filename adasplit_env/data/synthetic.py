"""The embedded default dataset ``synthetic``: users with planted interest groups.

Items are split into ``num_groups`` groups; inside a group the items form a
cycle (item k is followed by item k+1). Each user has between
``min_interests`` and ``max_interests`` groups and a private position in each.
At every step the user stays in the current interest or, with probability
``switch_prob``, jumps to another of their interests, then consumes the next
item of that group's cycle (with probability ``noise`` a random item of the
group instead). So the next item follows from the last item *of the right
group*, not from the last item of the history: exactly what a multi-interest
model should pick up. The true group of every item is known, so a learned
allocation can be scored against it (adjusted Rand index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adasplit_env.data.interactions import Interactions
from adasplit_env.errors import DataError


@dataclass(frozen=True)
class SyntheticConfig:
    num_users: int = 1000
    num_groups: int = 8
    items_per_group: int = 30
    min_interests: int = 1
    max_interests: int = 4
    min_length: int = 8
    max_length: int = 30
    switch_prob: float = 0.5
    noise: float = 0.05
    seed: int = 0

    def validate(self) -> None:
        if self.num_users < 1 or self.num_groups < 1 or self.items_per_group < 2:
            raise DataError("synthetic: need >= 1 user, >= 1 group and >= 2 items per group")
        if not 1 <= self.min_interests <= self.max_interests <= self.num_groups:
            raise DataError("synthetic: need 1 <= min_interests <= max_interests <= num_groups")
        if not 1 <= self.min_length <= self.max_length:
            raise DataError("synthetic: need 1 <= min_length <= max_length")
        if not (0.0 <= self.switch_prob <= 1.0 and 0.0 <= self.noise <= 1.0):
            raise DataError("synthetic: switch_prob and noise must lie in [0, 1]")


@dataclass(frozen=True)
class SyntheticData:
    interactions: Interactions
    item_group: dict[str, int]  # raw item id -> planted group
    user_interests: dict[str, tuple[int, ...]]  # raw user id -> its groups


def planted_item_id(group: int, k: int) -> str:
    """The raw id of item ``k`` of planted group ``group``."""
    return f"g{group}i{k}"


def planted_item(raw_id: str) -> tuple[int, int]:
    """(group, k) of a generated item's raw id (the inverse of planted_item_id)."""
    group, _, k = raw_id.removeprefix("g").partition("i")
    return int(group), int(k)


MEMORIES = ("interests", "latest")


def next_item_probabilities(
    config: SyntheticConfig,
    interests: tuple[int, ...],
    window: list[tuple[int, int]],
    memory: str = "interests",
) -> np.ndarray:
    """The generator's own distribution of a user's next item, (num_groups *
    items_per_group,) indexed by ``group * items_per_group + k``: the Bayes
    predictor a model can at best approach.

    ``interests`` are the user's planted groups, ``window`` the (group, k) of the
    history items the model sees, oldest first (the last one's group is the
    current interest). An interest's cycle position is one past its last item
    in the window, whether that item followed the cycle or was noise. With
    ``memory="latest"`` only the current interest's position is known (what
    one sequence state that knows every interest but keeps no state per
    interest can use); an interest without a known position is uniform over
    its items."""
    if memory not in MEMORIES:
        raise ValueError(f"unknown memory {memory!r}; use {' or '.join(MEMORIES)}")
    n_per = config.items_per_group
    current = window[-1][0]
    positions = {group: (k + 1) % n_per for group, k in window}
    if memory == "latest":
        positions = {current: positions[current]}
    others = [g for g in interests if g != current]
    chosen = {current: 1.0} if not others else {current: 1.0 - config.switch_prob}
    for group in others:
        chosen[group] = config.switch_prob / len(others)
    probabilities = np.zeros(config.num_groups * n_per)
    for group, p_group in chosen.items():
        block = probabilities[group * n_per : (group + 1) * n_per]
        if group in positions:
            block += p_group * config.noise / n_per
            block[positions[group]] += p_group * (1.0 - config.noise)
        else:
            block += p_group / n_per
    return probabilities


def generate_synthetic(config: SyntheticConfig = SyntheticConfig()) -> SyntheticData:
    """Generate the planted-interest dataset (deterministic for a given seed)."""
    config.validate()
    rng = np.random.default_rng(config.seed)
    n_per = config.items_per_group

    def item_id(group: int, k: int) -> str:
        return planted_item_id(group, k % n_per)

    users, items, times = [], [], []
    user_interests: dict[str, tuple[int, ...]] = {}
    for user in range(config.num_users):
        raw_user = f"u{user}"
        n_interests = int(rng.integers(config.min_interests, config.max_interests + 1))
        interests = tuple(int(g) for g in rng.choice(config.num_groups, n_interests, replace=False))
        user_interests[raw_user] = interests
        position = {g: int(rng.integers(n_per)) for g in interests}
        current = interests[int(rng.integers(n_interests))]
        length = int(rng.integers(config.min_length, config.max_length + 1))
        for step in range(length):
            if step > 0 and n_interests > 1 and rng.random() < config.switch_prob:
                others = [g for g in interests if g != current]
                current = others[int(rng.integers(len(others)))]
            if rng.random() < config.noise:
                k = int(rng.integers(n_per))
            else:
                k = position[current]
            position[current] = (k + 1) % n_per
            users.append(raw_user)
            items.append(item_id(current, k))
            times.append(float(step))
    item_group = {item_id(g, k): g for g in range(config.num_groups) for k in range(n_per)}
    return SyntheticData(Interactions.from_rows(users, items, times), item_group, user_interests)
