"""Learner benchmark on the env where learning pays (``AdaSplit/PlantedAllocation-v0``).

Each learner of docs/rl-libraries.md trains from scratch against the frozen,
trained recommender for the same budget of env steps, with several seeds; its
greedy policy is then scored by ``adasplit_env.envs.reference_policies`` on the
same 4,096 episodes as the reference policies (join group 0, always create,
uniform random: the floor; the recommender's jointly learned allocator and the
planted-interest oracle: the ceiling): mean return, groups per user, ARI of
the allocation against the planted interests, wall time.

    python benchmarks/learners.py --steps 100000 --seeds 0 1 2 --out results/learners/planted

Results go to one JSON file per (learner, seed) as they finish (a rerun skips
those present); the table is printed from all files found. One torch thread.

``--joint DIR`` prints the other half instead: the project's learners on the
joint task (the allocator trained with the recommender, ``train_agent.py``),
from the run dirs ``DIR/<learner>-seed<k>`` that the grid
``benchmarks/grids/joint-learners.txt`` lists: test NDCG@10, the final
epoch's training return, ARI over multi-interest users, groups per user at
prediction and wall time, mean (and standard deviation) over the seeds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import adasplit_env
from adasplit_env.envs.reference_policies import (
    HEADER,
    POLICIES,
    PolicyScore,
    format_score,
    run_policy,
    score,
)
from adasplit_env.io import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
ENV_ID = adasplit_env.PLANTED_ENV_ID


def recipe(name: str):
    path = REPO / "examples" / "rl_libraries" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def observe(env) -> np.ndarray | dict:
    return env.episodes.observation()


def cleanrl(network: str, trained: bool = True) -> Callable:
    def learn(steps: int, seed: int):
        module = recipe("cleanrl_ppo")
        if trained:
            agent, _ = module.train(steps, ENV_ID, seed, network)
        else:  # the control: the same network as initialised, before any update
            torch.manual_seed(seed)
            space = gym.make_vec(ENV_ID, 1).single_observation_space
            agent = module.Agent(space["groups"].shape[1], space["groups"].shape[0], network)

        def policy(env, rng):
            obs = {key: torch.as_tensor(value) for key, value in observe(env).items()}
            with torch.no_grad():
                return agent.logits(obs).masked_fill(~obs["action_mask"], -1e8).argmax(1).numpy()

        return policy, {"mask_in_observation": True}

    return learn


def sb3_maskable_ppo(steps: int, seed: int):
    model = recipe("sb3").make_model("maskable_ppo", ENV_ID, seed)
    model.learn(total_timesteps=steps)

    def policy(env, rng):
        return model.predict(observe(env), action_masks=env.action_masks(), deterministic=True)[0]

    return policy, {}


def sb3_dqn(steps: int, seed: int):
    model = recipe("sb3").make_model("dqn", ENV_ID, seed)
    model.learn(total_timesteps=steps)

    def policy(env, rng):
        return model.predict(observe(env), deterministic=True)[0]

    return policy, {"flat_observation": True}


def torchrl_ppo(steps: int, seed: int):
    from tensordict import TensorDict
    from torchrl.envs.utils import ExplorationType, set_exploration_type

    actor, _ = recipe("torchrl_ppo").train(steps, ENV_ID, seed)

    def policy(env, rng):
        obs = observe(env)
        batch = TensorDict(
            {key: torch.as_tensor(value) for key, value in obs.items()},
            batch_size=[env.num_envs],
        )
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            return actor(batch)["action"].numpy()

    return policy, {"flat_observation": True, "mask_in_observation": True}


def skrl_ppo(steps: int, seed: int, directory: str = "runs/skrl"):
    agent = recipe("skrl_ppo").train(steps, ENV_ID, seed, directory=directory)
    net = agent.models["policy"].net

    def policy(env, rng):
        with torch.no_grad():
            return net(torch.as_tensor(observe(env))).argmax(1).numpy()

    return policy, {"flat_observation": True}


def tianshou_dqn(steps: int, seed: int):
    algorithm, _ = recipe("tianshou_dqn").train(steps, ENV_ID, seed)
    net = algorithm.policy.model

    def policy(env, rng):
        with torch.no_grad():
            return net(torch.as_tensor(observe(env)))[0].argmax(1).numpy()

    return policy, {"flat_observation": True}


LEARNERS: dict[str, Callable] = {
    "cleanrl_ppo_mlp": cleanrl("mlp"),
    "cleanrl_ppo_affinity": cleanrl("affinity"),
    "cleanrl_affinity_init": cleanrl("affinity", trained=False),
    "sb3_maskable_ppo": sb3_maskable_ppo,
    "sb3_dqn": sb3_dqn,
    "torchrl_ppo": torchrl_ppo,
    "skrl_ppo": skrl_ppo,
    "tianshou_dqn": tianshou_dqn,
}


def run_one(name: str, steps: int, seed: int, episodes: int) -> dict:
    torch.manual_seed(seed)
    start = time.perf_counter()
    policy, layout = LEARNERS[name](steps, seed)
    train_seconds = time.perf_counter() - start
    env = gym.make_vec(ENV_ID, 256, **layout)
    result = run_policy(env, policy, episodes, seed=0, name=name)
    return {**vars(result), "seed": seed, "steps": steps, "train_seconds": train_seconds}


def table(out: Path, episodes: int) -> None:
    env = gym.make_vec(ENV_ID, 256)
    print(f"{ENV_ID}: greedy policies scored on the same {episodes} episodes")
    print(HEADER + f"{'seeds':>7}{'train s':>9}")
    for result in score(env, list(POLICIES), episodes):
        print(format_score(result) + f"{'-':>7}{'-':>9}")
    for name in LEARNERS:
        rows = [json.loads(path.read_text()) for path in sorted(out.glob(f"{name}-seed*.json"))]
        if not rows:
            continue
        mean = {key: float(np.mean([row[key] for row in rows])) for key in
                ("mean_return", "groups_per_user", "ari_multi_interest", "train_seconds")}  # fmt: skip
        spread = (
            float(np.std([row["mean_return"] for row in rows], ddof=1)) if len(rows) > 1 else 0.0
        )
        budget = f"{rows[0]['steps'] // 1000}k" if not name.endswith("_init") else "0"
        summary = PolicyScore(
            f"{name} ({budget})",
            mean["mean_return"],
            spread,
            mean["groups_per_user"],
            mean["ari_multi_interest"],
            episodes,
        )
        print(format_score(summary) + f"{len(rows):>7}{mean['train_seconds']:>9.0f}")
    print("learners: mean over seeds; +-se is then the seeds' standard deviation of the return")


def joint_table(root: Path) -> None:
    """The joint-task learners' table from their run dirs (mean and sd over seeds)."""
    runs: dict[str, list[dict]] = {}
    for metrics_path in sorted(root.glob("*-seed*/metrics.json")):
        name = metrics_path.parent.name.rsplit("-seed", 1)[0]
        runs.setdefault(name, []).append(json.loads(metrics_path.read_text()))
    print(f"joint task on synthetic ({root}): mean (sd) over seeds")
    print(
        f"{'learner':<24}{'seeds':>6}{'NDCG@10':>16}{'return':>16}{'ARI':>14}"
        f"{'groups':>8}{'minutes':>9}"
    )
    for name, rows in runs.items():

        def cell(values, width, digits=2):
            values = np.asarray(values, dtype=float)
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            return f"{values.mean():.{digits}f} ({sd:.{digits}f})".rjust(width)

        def field(row, key):  # SASRec has no allocation: no return, ARI or groups
            value = row["history"][-1].get(key) if key.startswith("charts/") else row.get(key)
            return float("nan") if value is None else value

        print(
            f"{name:<24}{len(rows):>6}"
            + cell([row["test"]["NDCG@10"] for row in rows], 16)
            + cell([field(row, "charts/episode_return") for row in rows], 16)
            + cell([field(row, "allocation_ari_multi_interest") for row in rows], 14, 3)
            + f"{np.mean([field(row, 'filled_groups_per_user') for row in rows]):>8.2f}"
            + f"{np.mean([row['total_seconds'] for row in rows]) / 60:>9.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=list(LEARNERS))
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=4096, help="scored episodes")
    parser.add_argument("--out", type=Path, default=Path("results/learners/planted"))
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--joint", type=Path, metavar="DIR", help="print the joint-task table")
    args = parser.parse_args(argv)
    if args.joint is not None:
        joint_table(args.joint)
        return 0
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.learners:
            for seed in args.seeds:
                path = args.out / f"{name}-seed{seed}.json"
                if path.exists():
                    continue
                row = run_one(name, args.steps, seed, args.episodes)
                atomic_write_json(path, row)
                print(f"{name} seed {seed}: return {row['mean_return']:.3f}, "
                      f"ARI {row['ari_multi_interest']:.3f}, {row['train_seconds']:.0f} s", flush=True)  # fmt: skip
    table(args.out, args.episodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
