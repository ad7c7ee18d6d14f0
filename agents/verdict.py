"""Whether a finished run worked: its numbers beside the controls that give them meaning.

A run's NDCG@10 and groups per user mean little alone. On data with planted
interests (``synthetic``) the allocation is judged against one group per user
(ARI 0 over multi-interest users), a random allocator and the planted
interests (ARI 1), and NDCG@10 against reference runs on the same data:
SASRec, AdaSplit+ and AdaSplit+ held to one group, each the mean of the
3 seeds committed under ``results/synthetic/`` (REPRODUCTION.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from adasplit_env.data.datasets import synthetic_spec

# An allocation whose ARI over multi-interest users stays below this is, at
# prediction, a single-group recommender whatever its group count says.
SPLITS_INTERESTS = 0.05


@dataclass(frozen=True)
class ReferenceRun:
    label: str
    ndcg10: float  # test NDCG@10, mean of 3 seeds
    source: str  # the committed run dirs


# Test NDCG@10 on the default ``synthetic`` data (l = 10, d = 64, 100 epochs, patience 10).
SYNTHETIC_REFERENCES = (
    ReferenceRun("SASRec", 65.51, "results/synthetic/sasrec{,-seed1,-seed2}"),
    ReferenceRun("AdaSplit+", 74.39, "results/synthetic/plus/affinity{,-seed1,-seed2}"),
    ReferenceRun(
        "AdaSplit+ held to one group",
        64.61,
        "results/synthetic/plus/affinity-single{,-seed1,-seed2}",
    ),
)


def allocation_is_one_group(results: dict) -> bool:
    """No better than one group per user: (almost) every user keeps one group, or, with
    planted interests, the multi-interest users' groups do not follow them."""
    filled = results.get("filled_groups_per_user", results.get("groups_per_user", 1.0))
    if filled < 1.05:
        return True
    ari = results.get("allocation_ari_multi_interest")
    return ari is not None and ari < SPLITS_INTERESTS


def references_for(config) -> tuple[ReferenceRun, ...]:
    """The reference runs measured on the same data and history length, if any."""
    if config.dataset == "synthetic" and config.model_options.max_len == 10 and config.k_core == 5:
        return SYNTHETIC_REFERENCES
    return ()


def verdict(results: dict, config) -> list[str]:
    """Lines that say whether the run worked, and against what."""
    if "groups_per_user" not in results:  # a baseline: no allocation to judge
        return []
    lines = ["verdict (test split):"]
    filled = results.get("filled_groups_per_user", results["groups_per_user"])
    ari = results.get("allocation_ari_multi_interest")
    if ari is not None:
        lines.append(
            f"  allocation: ARI over multi-interest users {ari:.3f} (one group per user "
            f"{results.get('allocation_ari_multi_interest_one_group', 0.0):.3f}, random "
            f"{results['allocation_ari_multi_interest_random']:.3f}, the planted interests 1.000)"
        )
        lines.append(
            f"  groups: {filled:.2f} per user hold history items; the planted interests "
            f"span {results['planted_groups_per_user']:.2f} per history"
        )
    elif synthetic_spec(config.dataset) is None:
        lines.append(
            f"  groups: {filled:.2f} per user hold history items (no planted interests to "
            "judge them by on this data)"
        )
    ndcg = results["test"]["NDCG@10"]
    references = references_for(config)
    if references:
        shown = ", ".join(f"{ref.label} {ref.ndcg10:.2f}" for ref in references)
        lines.append(f"  NDCG@10 {ndcg:.2f}; on this data (3 seeds each, 100 epochs): {shown}")
    one_group = allocation_is_one_group(results)
    if one_group:
        lines.append(
            "  => the allocation is no better than one group per user: at prediction this "
            "is a single-group recommender (expected of the paper's model; AdaSplit+, "
            "configs/<dataset>-plus.yaml, has an allocator that splits)"
        )
    elif ari is not None:
        grade = "separates the planted interests" if ari >= 0.5 else "partly follows them"
        lines.append(f"  => the allocator {grade}")
    if references:
        sasrec, plus, _ = references
        if ndcg >= plus.ndcg10 - 2.0:
            lines.append("  => NDCG@10 is at AdaSplit+'s level")
        elif ndcg >= sasrec.ndcg10 - 2.0:
            lines.append("  => NDCG@10 is at SASRec's level")
        else:
            lines.append(
                f"  => NDCG@10 is {sasrec.ndcg10 - ndcg:.1f} points below SASRec on this data"
            )
    return lines
