"""How much the allocation moves the target's likelihood, at a run's ``best.pt``.

    python -m reproduce.allocation_gap "results/synthetic/plus-ablations/affinity/group-encoder*"

For a seeded subset of training samples, the target's log-likelihood under the
run's scoring rule (what ``--likelihood-reward`` pays) with the history
allocated by sampled actions, minus the same with argmax actions (the
allocation prediction makes), in eval mode. Near zero with a policy that
varies (sampled and argmax group counts differ) means the allocation hardly
matters to the prediction, so a likelihood-driven learner has little to learn
from; exactly zero where the policy is deterministic.
"""

from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from adasplit_env.checkpoint import load_checkpoint
from adasplit_env.data.split import Samples
from adasplit_env.errors import ConfigError, cli_errors
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import RewardConfig
from adasplit_env.process import AllocationProcess
from agents.base import run_episodes


@dataclass(frozen=True)
class AllocationGap:
    mean: float  # sampled minus argmax log p(target), nats
    std: float
    greedy_log_likelihood: float
    groups_sampled: float
    groups_greedy: float
    samples: int


def allocation_gap(
    model: AdaSplitModel, samples: Samples, count: int = 4096, seed: int = 0
) -> AllocationGap:
    """Sampled minus argmax log p(target) over ``count`` seeded samples; puts ``model``
    in eval mode (no dropout: the same allocation scores the same)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = samples.subset(torch.randperm(len(samples), generator=generator)[:count])
    # the likelihood reward computes log p(target); its weight does not scale it
    process = AllocationProcess(model.eval(), RewardConfig(likelihood_reward=1.0))
    gaps, greedy_ll, groups_sampled, groups_greedy = [], [], [], []
    with torch.no_grad():
        for batch in chosen.batches(512):
            sampled = run_episodes(process, batch, process.policy_logits, generator=generator)
            greedy = run_episodes(process, batch, process.policy_logits, greedy=True)
            gaps.append(sampled.target_log_likelihood - greedy.target_log_likelihood)
            greedy_ll.append(greedy.target_log_likelihood)
            groups_sampled.append(sampled.final_state.num_groups.float())
            groups_greedy.append(greedy.final_state.num_groups.float())
    gap = torch.cat(gaps)
    return AllocationGap(
        mean=gap.mean().item(),
        std=gap.std().item() if len(gap) > 1 else 0.0,
        greedy_log_likelihood=torch.cat(greedy_ll).mean().item(),
        groups_sampled=torch.cat(groups_sampled).mean().item(),
        groups_greedy=torch.cat(groups_greedy).mean().item(),
        samples=len(gap),
    )


@cli_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reproduce.allocation_gap",
        description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[2],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", help="globs of run dirs holding best.pt, quoted")
    parser.add_argument("--samples", type=int, default=4096, help="training samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="folder of <name>/interactions.tsv.gz")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = sorted({run for pattern in args.runs for run in glob.glob(pattern)})
    runs = [run for run in runs if Path(run, "best.pt").is_file()]
    if not runs:
        raise ConfigError(f"no run dir with a best.pt matches {' '.join(args.runs)}")
    for run in runs:
        loaded = load_checkpoint(Path(run, "best.pt"), data_dir=args.data_dir)
        samples = loaded.dataset.split.train_samples(loaded.model.config.max_len)
        gap = allocation_gap(loaded.model, samples, args.samples, args.seed)
        print(
            f"{run}: sampled - argmax log p(target) {gap.mean:+.3f} nats (sd {gap.std:.2f}, "
            f"{gap.samples} training samples); argmax log p {gap.greedy_log_likelihood:.2f}; "
            f"groups sampled {gap.groups_sampled:.2f}, argmax {gap.groups_greedy:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
