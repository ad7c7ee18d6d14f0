"""Reference policies for the allocation MDP, and the command that scores them.

A learned allocator is only worth something against what needs no learning:

- ``join_first``: every item joins group 0 (one group per user);
- ``always_create``: every item opens a new group while slots remain;
- ``uniform_random``: a uniformly random valid action;
- ``model_argmax``: the env's recommender's own allocator, section 3.3's argmax
  (on ``AdaSplit/PlantedAllocation-v0`` the one learned jointly with it);
- ``planted_oracle``: the item joins the group already holding an item of its
  planted interest, else opens one (datasets with planted interests only).

Each policy maps the native vector env's state to actions. :func:`score`
runs every policy on the *same* episodes (sub-env i draws its samples from its
own seeded generator, and an episode's length does not depend on the actions),
so their differences are paired.

    python -m adasplit_env.envs.reference_policies --env-id AdaSplit/PlantedAllocation-v0
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

import adasplit_env  # noqa: F401  (registers the env ids gym.make_vec reads)
from adasplit_env.analysis.allocation_quality import adjusted_rand_index
from adasplit_env.envs.vector_env import AllocationVectorEnv
from adasplit_env.errors import ConfigError

Policy = Callable[[AllocationVectorEnv, np.random.Generator], np.ndarray]


def join_first(env: AllocationVectorEnv, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(env.num_envs, dtype=np.int64)


def always_create(env: AllocationVectorEnv, rng: np.random.Generator) -> np.ndarray:
    """The create slot h while h < max_groups, else the last group."""
    num_groups = env.episodes.state.num_groups.cpu().numpy().astype(np.int64)
    return np.minimum(num_groups, env.process.max_groups - 1)


def uniform_random(env: AllocationVectorEnv, rng: np.random.Generator) -> np.ndarray:
    mask = env.episodes.action_mask().astype(np.float64)
    draws = rng.random(mask.shape) * mask  # the largest draw among valid actions
    return draws.argmax(axis=1)


def model_argmax(env: AllocationVectorEnv, rng: np.random.Generator) -> np.ndarray:
    with torch.no_grad():
        return env.process.policy_logits(env.episodes.state).argmax(dim=1).cpu().numpy()


def planted_oracle(env: AllocationVectorEnv, rng: np.random.Generator) -> np.ndarray:
    planted = env.parts.dataset.item_groups
    if planted is None:
        raise ConfigError(f"{env.parts.dataset.name} has no planted interests")
    state = env.episodes.state
    items = state.step_item_ids.cpu().numpy()
    assignments = state.assignments.cpu().numpy()
    position = state.cursor.clamp(max=state.target_position).cpu().numpy()
    num_groups = state.num_groups.cpu().numpy()
    actions = num_groups.astype(np.int64).copy()  # default: open a group
    for row in range(env.num_envs):
        interest = planted[items[row, position[row]]]
        placed = assignments[row, : position[row]]
        same = (placed >= 0) & (planted[items[row, : position[row]]] == interest)
        if same.any():
            actions[row] = placed[same][-1]
    return np.minimum(actions, env.process.max_groups - 1)


POLICIES: dict[str, Policy] = {
    "join_first": join_first,
    "always_create": always_create,
    "uniform_random": uniform_random,
    "model_argmax": model_argmax,
    "planted_oracle": planted_oracle,
}


@dataclass
class PolicyScore:
    """A policy's mean episode return (and its standard error), its groups per
    user and, with planted interests, the mean per-episode ARI of its allocation
    (history and target) against them over the episodes spanning two or more."""

    policy: str
    mean_return: float
    stderr: float
    groups_per_user: float
    ari_multi_interest: float
    episodes: int


def run_policy(
    env: AllocationVectorEnv, policy: Policy, episodes: int, seed: int, name: str = "policy"
) -> PolicyScore:
    """Score ``policy`` on the first ``episodes`` episodes the env's seeded rows draw
    (the same episodes for every policy: their lengths do not depend on actions)."""
    if env.autoreset_mode != AutoresetMode.NEXT_STEP:
        raise ConfigError("scoring reads each finished episode before its restart: next-step mode")
    rng = np.random.default_rng(seed)
    planted = env.parts.dataset.item_groups
    env.reset(seed=seed)
    running = np.zeros(env.num_envs)
    returns, groups, aris = [], [], []
    while len(returns) < episodes:
        _, reward, terminated, _, infos = env.step(policy(env, rng))
        running += reward
        ended = np.flatnonzero(terminated)
        if ended.size and planted is not None:  # the finished episodes, before their restart
            items = env.episodes.state.step_item_ids[ended].cpu().numpy()
            slots = env.episodes.state.assignments[ended].cpu().numpy()
        for index, row in enumerate(ended):
            returns.append(running[row])
            groups.append(infos["num_groups"][row])
            running[row] = 0.0
            if planted is not None:
                real = items[index] != 0
                labels = planted[items[index][real]]
                if len(np.unique(labels)) >= 2:
                    aris.append(adjusted_rand_index(slots[index][real], labels))
    returns = np.array(returns[:episodes])
    return PolicyScore(
        name,
        float(returns.mean()),
        float(returns.std(ddof=1) / np.sqrt(len(returns))),
        float(np.mean(groups[:episodes])),
        float(np.mean(aris)) if aris else float("nan"),
        len(returns),
    )


def score(
    env: AllocationVectorEnv, policies: list[str], episodes: int = 4096, seed: int = 0
) -> list[PolicyScore]:
    return [run_policy(env, POLICIES[name], episodes, seed, name) for name in policies]


HEADER = f"{'policy':<28}{'return':>9}{'+-se':>7}{'groups':>8}{'ARI':>7}"


def format_score(result: PolicyScore) -> str:
    return (
        f"{result.policy:<28}{result.mean_return:>9.3f}{result.stderr:>7.3f}"
        f"{result.groups_per_user:>8.2f}{result.ari_multi_interest:>7.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adasplit_env.envs.reference_policies",
        description="Score the reference policies (floor and ceiling) of an allocation env "
        "on the same episodes.",
    )
    parser.add_argument("--env-id", default="AdaSplit/PlantedAllocation-v0")
    parser.add_argument("--episodes", type=int, default=4096, help="episodes per policy")
    parser.add_argument("--num-envs", type=int, default=256, help="episodes stepped together")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument(
        "--policies",
        nargs="+",
        default=None,
        choices=sorted(POLICIES),
        help="default: all that apply",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = gym.make_vec(args.env_id, args.num_envs, split=args.split)
    if not isinstance(env, AllocationVectorEnv):
        parser.error(f"{args.env_id} is not an adasplit-gym env id")
    policies = args.policies or [
        name
        for name in POLICIES
        if name != "planted_oracle" or env.parts.dataset.item_groups is not None
    ]
    print(
        f"{args.env_id}: {args.episodes} episodes of the {args.split} split per policy "
        f"(the same ones for every policy), seed {args.seed}"
    )
    print(HEADER + f"{'time':>8}")
    for name in policies:
        start = time.perf_counter()
        (result,) = score(env, [name], args.episodes, args.seed)
        print(format_score(result) + f"{time.perf_counter() - start:>7.1f}s")
    print(
        "ARI: mean per-episode adjusted Rand index of the allocation against the planted "
        "interests, over episodes spanning two or more"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
