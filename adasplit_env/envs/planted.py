"""``AdaSplit/PlantedAllocation-v0``: an allocation MDP where learning pays.

On the default env (a new, untrained recommender and the paper's reward) the
trivial policy "always join group 0" is optimal. This env instead reads a
*trained* recommender and rewards what it predicts:

- data: the embedded ``synthetic`` dataset, whose users have planted interests;
- recommender: the AdaSplit+ preset (``configs/synthetic-plus.yaml``) trained
  jointly with its allocator, shipped as ``adasplit_env/assets/`` (frozen here);
- reward: that run's, the target's log-likelihood at the last step
  (``likelihood_reward 1``, no Eq. 14-15 terms, no creation penalty). It
  depends on every step: the target is scored against the groups the history
  was allocated into.

So an allocation that keeps interests apart predicts the target better:
``python -m adasplit_env.envs.reference_policies`` prints the floor (join
group 0, always create, uniform random) and the references (the recommender's
own jointly learned allocator, the planted-interest oracle) on the same
episodes.

The shipped checkpoint was made with ``python train_agent.py --config
configs/synthetic-plus.yaml --seed 0 --threads 1`` (32 epochs, best 22, test
NDCG@10 74.79, allocation ARI 0.773), then ``python -m adasplit_env.envs.planted
export runs/<run>/best.pt``, which keeps the model and drops the training state.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from adasplit_env.checkpoint import REQUIRED_KEYS, read_checkpoint
from adasplit_env.envs.allocation_env import AllocationEnv
from adasplit_env.envs.vector_env import AllocationVectorEnv
from adasplit_env.io import atomic_torch_save

PLANTED_ENV_ID = "AdaSplit/PlantedAllocation-v0"
ASSET = "planted-synthetic-plus.pt"


def planted_checkpoint() -> Path:
    """The shipped trained recommender (a regular ``train_agent.py`` checkpoint)."""
    return Path(str(resources.files("adasplit_env") / "assets" / ASSET))


def make_planted_env(**kwargs: Any) -> AllocationEnv:
    """The single env; ``checkpoint=`` swaps in another trained run."""
    kwargs.setdefault("checkpoint", str(planted_checkpoint()))
    return AllocationEnv(**kwargs)


def make_planted_vector_env(num_envs: int = 1, **kwargs: Any) -> AllocationVectorEnv:
    kwargs.setdefault("checkpoint", str(planted_checkpoint()))
    return AllocationVectorEnv(num_envs, **kwargs)


def export(source: str, destination: str | Path | None = None) -> Path:
    """Copy a checkpoint's model (not its optimiser or agent state) to the asset path."""
    payload = read_checkpoint(source)
    kept = {key: payload[key] for key in ("format", "version", *REQUIRED_KEYS)}
    kept["model_type"] = payload.get("model_type", "adasplit")
    kept["epoch"] = payload.get("epoch")
    kept["train_config"] = {**payload["train_config"], "run_dir": None}
    destination = Path(destination) if destination is not None else planted_checkpoint()
    return atomic_torch_save(destination, kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adasplit_env.envs.planted", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export_parser = commands.add_parser("export", help="ship a trained run's best.pt as the asset")
    export_parser.add_argument("checkpoint")
    export_parser.add_argument("--to", default=None, help="default: the package's asset path")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"wrote {export(args.checkpoint, args.to)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
