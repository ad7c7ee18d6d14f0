"""Where a user's next item comes from: the interest of the latest item, an earlier one, or a new one.

    python -m reproduce.target_interests garden lastfm synthetic
    python -m reproduce.target_interests garden \\
        --compare "results/garden/plus/likelihood*" "results/garden/sasrec*"

A model that keeps several interest groups (AdaSplit's groups, max scoring)
can only predict better than one sequence state where the held-out item
returns to an interest the history holds but does not end on: a sequence
model already leans on the latest item, and nothing in the history helps with
an interest that is not there. This measures how often that happens. Each
item gets an interest: its co-occurrence cluster (the clusters ``join_logit
cluster`` uses, from the training sequences only) or, on ``synthetic``, the
planted group. For each evaluated user, with the history cut to the last
``max_len`` items as the models see it, the held-out item is

- ``latest``: of the interest of the history's last item;
- ``earlier``: of an interest of the history, but not the last item's;
- ``new``: of no interest of the history.

Whether a group could predict *which* item of that interest comes next: over
the ``earlier`` users, a first-order transition model of the training
sequences (how often they step from one item to another) ranks the held-out
item from the history's last item, and from the last history item of the
held-out item's interest (what a group holding that interest ends on; an
oracle, as it knows the held-out item's interest). Where the second is not
higher, even a perfect allocation has nothing item-level to add.

Chance is the same with the held-out items permuted across users (each
interest as frequent as it is among held-out items, unrelated to the
history). ``--compare A B`` splits a paired difference of two models' per-user
metric (as ``python -m reproduce.paired``) by these kinds: the
users where groups could help are the ``earlier`` ones.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import torch

from adasplit_env.data.cooccurrence import cooccurrence_clusters
from adasplit_env.data.datasets import (
    SYNTHETIC,
    Dataset,
    load_dataset,
    resolve_dataset_path,
    synthetic_spec,
)
from adasplit_env.data.split import LeaveOneOutSplit
from adasplit_env.errors import ConfigError, cli_errors
from reproduce.paired import (
    PairedDifference,
    finished_runs,
    paired_difference,
    runs_ranks,
    user_metric,
)

TARGET_KINDS = ("latest", "earlier", "new")
INTEREST_SOURCES = ("clusters", "planted")


def target_kinds(
    item_interests: np.ndarray, histories: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """The kind of each target as an index into TARGET_KINDS, (users,) int64.

    ``item_interests`` (num_items + 1,) maps an item id to its interest;
    ``histories`` (users, L) are left-padded with 0 (each holding at least one
    item); ``targets`` (users,)."""
    histories, targets = np.asarray(histories), np.asarray(targets)
    present = histories != 0
    if not present[:, -1].all():
        raise ValueError("every history must hold an item at its last position (left padding)")
    history_interests = np.where(present, item_interests[histories], -1)
    target_interest = item_interests[targets]
    latest = history_interests[:, -1] == target_interest
    anywhere = (history_interests == target_interest[:, None]).any(axis=1)
    return np.where(latest, 0, np.where(anywhere, 1, 2)).astype(np.int64)


def kind_shares(kinds: np.ndarray) -> np.ndarray:
    """The share of each of TARGET_KINDS, (3,)."""
    return np.bincount(kinds, minlength=len(TARGET_KINDS)) / max(len(kinds), 1)


@dataclass(frozen=True)
class TargetInterests:
    kinds: np.ndarray  # (users,) each target's kind, an index into TARGET_KINDS
    interests: int  # distinct interests over all items
    interests_per_history: float  # mean distinct interests in a history
    chance: np.ndarray  # (3,) the kinds' shares with targets permuted across users
    # over the ``earlier`` users, the NDCG@10 of a first-order transition model
    # (Transitions) from the history's last item, and from the last history item
    # of the target's interest (what a group holding that interest ends on)
    earlier_from_last: float = float("nan")
    earlier_from_interest: float = float("nan")

    @property
    def users(self) -> int:
        return len(self.kinds)

    @property
    def shares(self) -> np.ndarray:
        """(3,) the observed share of each kind."""
        return kind_shares(self.kinds)

    def row(self) -> str:
        cells = [f"{s:.1%} ({c:.1%})" for s, c in zip(self.shares, self.chance)]
        cells += [f"{self.earlier_from_last:.2f}", f"{self.earlier_from_interest:.2f}"]
        return " | ".join(cells)


def item_interests(dataset: Dataset, source: str = "clusters", count: int = 20, seed: int = 0):
    """Each item's interest, (num_items + 1,) int64: a co-occurrence cluster of the
    training sequences, or with ``planted`` the synthetic generator's group."""
    if source == "planted":
        if dataset.item_groups is None:
            raise ConfigError(f"{dataset.name}: no planted groups (only {SYNTHETIC} has them)")
        return np.asarray(dataset.item_groups, dtype=np.int64)
    if source != "clusters":
        raise ConfigError(
            f"unknown interest source {source!r}; use {' or '.join(INTEREST_SOURCES)}"
        )
    return cooccurrence_clusters(dataset.split, count, seed=seed)


def target_interests(
    interests: np.ndarray,
    histories: np.ndarray,
    targets: np.ndarray,
    permutations: int = 20,
    seed: int = 0,
    split: LeaveOneOutSplit | None = None,
) -> TargetInterests:
    """The observed shares of TARGET_KINDS and their chance level (targets permuted
    across users, mean over ``permutations`` draws); with ``split`` (the
    :class:`LeaveOneOutSplit` they come from) also the transition model's NDCG@10
    on the ``earlier`` users from the last item and from the interest's last item."""
    kinds = target_kinds(interests, histories, targets)
    from_last = from_interest = float("nan")
    earlier = kinds == TARGET_KINDS.index("earlier")
    if split is not None and earlier.any():
        transitions = Transitions(split)
        histories_e, targets_e = histories[earlier], targets[earlier]
        from_last = user_metric(transitions.ranks(histories_e[:, -1], targets_e)).mean()
        sources = last_of_interest(interests, histories_e, targets_e)
        from_interest = user_metric(transitions.ranks(sources, targets_e)).mean()
    generator = np.random.default_rng(seed)
    chance = np.mean(
        [
            kind_shares(target_kinds(interests, histories, generator.permutation(targets)))
            for _ in range(permutations)
        ],
        axis=0,
    )
    history_interests = np.where(histories != 0, interests[histories], -1)
    distinct = [len(set(row[row >= 0])) for row in history_interests]
    return TargetInterests(
        kinds=kinds,
        interests=len(np.unique(interests[1:])),
        interests_per_history=float(np.mean(distinct)),
        chance=chance,
        earlier_from_last=float(from_last),
        earlier_from_interest=float(from_interest),
    )


class Transitions:
    """A first-order transition model of ``split``'s training sequences: from a source
    item, an item scores how often they step from the source to it."""

    def __init__(self, split: LeaveOneOutSplit):
        self.num_items = split.num_items
        self.size = split.num_items + 1
        steps = []
        for user in range(1, split.num_users + 1):
            sequence = split.train_sequence(user).astype(np.int64)
            steps.append(sequence[:-1] * self.size + sequence[1:])
        self.keys, self.counts = np.unique(np.concatenate(steps), return_counts=True)

    def ranks(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The rank of each target among all items from its source (ties against it),
        (users,) int64, 1-based."""
        sources = np.asarray(sources, dtype=np.int64)[:, None]
        return self.mixture_ranks(sources, np.ones(sources.shape), targets)

    def probabilities(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """(items, P(item | source)): the source's successors in the training sequences."""
        start = np.searchsorted(self.keys, source * self.size)
        end = np.searchsorted(self.keys, (source + 1) * self.size)
        counts = self.counts[start:end]
        return self.keys[start:end] - source * self.size, counts / max(counts.sum(), 1)

    def mixture_ranks(
        self, sources: np.ndarray, weights: np.ndarray, targets: np.ndarray
    ) -> np.ndarray:
        """The rank of each target (ties against it; 1-based) when items score
        ``sum_k weights[u, k] * P(item | sources[u, k])``; ``sources`` (users, K) with 0
        for none."""
        ranks = np.empty(len(targets), dtype=np.int64)
        for row, target in enumerate(targets):
            steps = [
                (items, weight * probabilities)
                for source, weight in zip(sources[row], weights[row])
                if source != 0 and weight != 0
                for items, probabilities in [self.probabilities(int(source))]
            ]
            items = np.concatenate([np.zeros(0, np.int64)] + [i for i, _ in steps])
            values = np.concatenate([np.zeros(0)] + [v for _, v in steps])
            scored, where = np.unique(items, return_inverse=True)
            scores = np.bincount(where, weights=values, minlength=len(scored))
            hit = np.flatnonzero(scored == target)
            score = scores[hit[0]] if len(hit) else 0.0
            # items (not the target) scoring at least as much; unscored items tie at 0
            at_least = (scores >= score - 1e-12).sum() - 1 if score > 0 else self.num_items - 1
            ranks[row] = 1 + at_least
        return ranks


# the weight of the current (last) interest's source in the per-interest mixture,
# chosen on validation
LATEST_WEIGHTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
MEMORIES = ("latest", "interests", "items")
# ``beside``: every item's memory and the per-interest one mixed, the latter's share of
# the mass chosen on validation (0: every item alone; 1: the interests alone)
MEMORY_PREDICTORS = (*MEMORIES, "beside")
BESIDE_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def memory_sources(
    interests: np.ndarray, histories: np.ndarray, memory: str, latest_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """(sources, weights), each (users, L): what a first-order predictor steps from.

    ``latest``: the history's last item alone. ``interests``: the last item of
    each interest in the history (what a group per interest ends on), the
    current interest's with ``latest_weight``, the others sharing the rest.
    ``items``: every history item, the last with ``latest_weight`` (a memory of
    everything, without interests)."""
    if memory not in MEMORIES:
        raise ValueError(f"unknown memory {memory!r}; use {', '.join(MEMORIES)}")
    users, length = histories.shape
    sources = np.zeros_like(histories)
    sources[:, -1] = histories[:, -1]
    if memory == "latest":
        return sources, (sources != 0).astype(np.float64)
    history_interests = np.where(histories != 0, interests[histories], -1)
    for row in range(users):
        current = history_interests[row, -1]
        seen = {current}
        for position in range(length - 2, -1, -1):
            item, interest = histories[row, position], history_interests[row, position]
            if item == 0:
                break
            if memory == "items" or interest not in seen:
                sources[row, position] = item
                seen.add(interest)
    others = (sources[:, :-1] != 0).sum(axis=1, keepdims=True)
    weights = np.where(sources != 0, (1.0 - latest_weight) / np.maximum(others, 1), 0.0)
    weights[:, -1] = np.where(others[:, 0] > 0, latest_weight, 1.0)
    return sources, weights


def beside_sources(
    items: tuple[np.ndarray, np.ndarray], interests: tuple[np.ndarray, np.ndarray], share: float
) -> tuple[np.ndarray, np.ndarray]:
    """(sources, weights), each (users, 2L): the ``items`` memory's with ``1 - share`` of
    the mass beside the ``interests`` memory's with ``share`` (both from
    :func:`memory_sources`): a memory of everything that also knows the interests, the
    first-order counterpart of groups beside a state of the whole history."""
    (item_sources, item_weights), (interest_sources, interest_weights) = items, interests
    return (
        np.concatenate([item_sources, interest_sources], axis=1),
        np.concatenate([(1.0 - share) * item_weights, share * interest_weights], axis=1),
    )


def last_of_interest(interests: np.ndarray, histories: np.ndarray, targets: np.ndarray):
    """The last history item of the target's interest, (users,) (0 where there is none)."""
    same = (histories != 0) & (interests[histories] == interests[targets][:, None])
    last = histories.shape[1] - 1 - np.argmax(same[:, ::-1], axis=1)
    return np.where(same.any(axis=1), histories[np.arange(len(histories)), last], 0)


@dataclass(frozen=True)
class MemoryPredictors:
    """First-order predictors with a memory of the latest item, of each interest's
    last item, of every item (:func:`memory_sources`), or of every item beside each
    interest's last (:func:`beside_sources`), on one split."""

    latest_weight: dict[str, float]  # memory -> the latest source's weight (validation's)
    beside_share: float  # the interests' share in ``beside`` (validation's)
    ranks: dict[str, np.ndarray]  # memory -> (users,) ranks of the held-out items
    kinds: np.ndarray  # (users,) each held-out item's kind

    def mean(self, memory: str, kind: str | None = None, metric: str = "NDCG@10") -> float:
        values = user_metric(self.ranks[memory], metric)
        if kind is not None:
            values = values[self.kinds == TARGET_KINDS.index(kind)]
        return float(values.mean()) if len(values) else float("nan")


def memory_predictors(
    dataset: Dataset, interests: np.ndarray, split: str = "test", max_len: int = 10
) -> MemoryPredictors:
    """Each memory's predictor on ``split``, the latest source's weight chosen from
    LATEST_WEIGHTS by validation NDCG@10 (the first best: the latest item alone wins ties);
    ``beside`` mixes the chosen ``items`` and ``interests`` predictors, the share chosen
    from BESIDE_SHARES the same way (every item alone wins ties)."""
    transitions = Transitions(dataset.split)
    histories, targets = split_arrays(dataset, split, max_len)
    val_histories, val_targets = split_arrays(dataset, "val", max_len)

    def val_score(sources_and_weights) -> float:
        return user_metric(transitions.mixture_ranks(*sources_and_weights, val_targets)).mean()

    # each memory's sources at its chosen weight, kept for ``beside`` to mix
    chosen, ranks, val_sources, test_sources = {}, {}, {}, {}
    for memory in MEMORIES:
        candidates = (1.0,) if memory == "latest" else LATEST_WEIGHTS
        options = [memory_sources(interests, val_histories, memory, w) for w in candidates]
        best = int(np.argmax([val_score(option) for option in options]))
        chosen[memory], val_sources[memory] = candidates[best], options[best]
        test_sources[memory] = memory_sources(interests, histories, memory, chosen[memory])
        ranks[memory] = transitions.mixture_ranks(*test_sources[memory], targets)

    scores = [
        val_score(beside_sources(val_sources["items"], val_sources["interests"], share))
        for share in BESIDE_SHARES
    ]
    share = BESIDE_SHARES[int(np.argmax(scores))]
    ranks["beside"] = transitions.mixture_ranks(
        *beside_sources(test_sources["items"], test_sources["interests"], share), targets
    )
    return MemoryPredictors(chosen, share, ranks, target_kinds(interests, histories, targets))


def split_arrays(dataset: Dataset, split: str, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(histories, targets) of ``split``'s evaluated users, as the models see them."""
    samples = dataset.split.eval_samples(split, max_len)
    return samples.histories.numpy(), samples.targets.numpy()


def difference_by_kind(
    ranks_a: np.ndarray,
    ranks_b: np.ndarray,
    kinds: np.ndarray,
    metric: str = "NDCG@10",
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, PairedDifference]:
    """A minus B (runs, users ranks each) among the users of each kind that has any."""
    return {
        kind: paired_difference(
            ranks_a[:, kinds == index], ranks_b[:, kinds == index], metric, resamples, seed=seed
        )
        for index, kind in enumerate(TARGET_KINDS)
        if (kinds == index).any()
    }


@cli_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reproduce.target_interests",
        description=__doc__.split("\n\n")[0],
        epilog="Kinds: latest = the interest of the history's last item; earlier = an "
        "interest of the history but not the last item's; new = none of the history's. "
        "Chance in brackets: held-out items permuted across users.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", help="dataset names or interaction files")
    parser.add_argument("--split", choices=("val", "test"), default="test")
    parser.add_argument("--max-len", type=int, default=10, help="history length l the models see")
    parser.add_argument(
        "--interests",
        choices=INTEREST_SOURCES,
        default="clusters",
        help="co-occurrence clusters, or the synthetic data's planted groups",
    )
    parser.add_argument("--clusters", type=int, default=20, help="clusters (join_logit cluster's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clusters and permutations")
    parser.add_argument("--permutations", type=int, default=20, help="draws of the chance level")
    parser.add_argument("--data-dir", default=None, help="folder of <name>/interactions.tsv.gz")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="two models' run dirs on the (one) dataset, each comma-separated globs "
        "(its seeds): A - B by kind",
    )
    parser.add_argument("--metric", default="NDCG@10", help="for --compare: NDCG@k, MRR@k, HR@k")
    parser.add_argument("--resamples", type=int, default=2000, help="for --compare: bootstrap")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also first-order predictors stepping from the last item, from each "
        "interest's last item, from every item, or from every item beside each interest's "
        "last (the latest's weight and the interests' share chosen on validation)",
    )
    args = parser.parse_args(argv)
    # the clusters' sparse SVD rounds differently with more threads; one keeps them
    # the clusters the (one-thread) training runs fit
    torch.set_num_threads(1)
    if args.compare and len(args.datasets) != 1:
        raise ConfigError("--compare needs exactly one dataset (the runs' own)")
    # bad input fails before any output: unknown datasets, run dirs that are not there
    for name in args.datasets:
        if synthetic_spec(name) is None:
            resolve_dataset_path(name, args.data_dir)
    ranks = [runs_ranks(finished_runs(pattern), args.split) for pattern in args.compare or ()]
    if any(r is None for r in ranks):
        raise ConfigError("a run dir has no user_ranks.npz (paired --backfill writes it)")
    print(
        f"{args.split} targets, history cut to the last {args.max_len} items; interests: "
        f"{args.interests}{'' if args.interests == 'planted' else f' ({args.clusters})'}"
    )
    print(
        "| dataset | users | interests | per history | latest | earlier | new | earlier users: "
        "next-item NDCG@10 from the last item | from the last item of the target's interest |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    memories = []
    for name in args.datasets:
        dataset = load_dataset(name, args.data_dir)
        interests = item_interests(dataset, args.interests, args.clusters, args.seed)
        histories, targets = split_arrays(dataset, args.split, args.max_len)
        result = target_interests(
            interests, histories, targets, args.permutations, args.seed, dataset.split
        )
        print(
            f"| {dataset.name} | {result.users:,} | {result.interests} | "
            f"{result.interests_per_history:.2f} | {result.row()} |"
        )
        if args.memory:
            memories.append(
                (dataset.name, memory_predictors(dataset, interests, args.split, args.max_len))
            )
    if memories:
        print(
            f"\nFirst-order predictors, {args.split} NDCG@10 (chosen on validation: the latest "
            "item's weight in round brackets, the interests' share in square ones):"
        )
        print(
            "| dataset | latest item | each interest's last item | every item | every item "
            "beside each interest's last [share] | interests - latest (95% over users) | "
            "beside - every item | `earlier` users: latest | interests | every item | beside |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, predictors in memories:
            gains = [
                paired_difference(
                    predictors.ranks[a],
                    predictors.ranks[b],
                    resamples=args.resamples,
                    seed=args.seed,
                ).cell()
                for a, b in (("interests", "latest"), ("beside", "items"))
            ]
            weights = predictors.latest_weight
            print(
                f"| {name} | {predictors.mean('latest'):.2f} | "
                f"{predictors.mean('interests'):.2f} ({weights['interests']:.1f}) | "
                f"{predictors.mean('items'):.2f} ({weights['items']:.1f}) | "
                f"{predictors.mean('beside'):.2f} [{predictors.beside_share:.2f}] | "
                + " | ".join(gains)
                + " | "
                + " | ".join(f"{predictors.mean(m, 'earlier'):.2f}" for m in MEMORY_PREDICTORS)
                + " |"
            )
    if args.compare:
        kinds = result.kinds  # the one dataset's
        if ranks[0].shape[1] != len(kinds) or ranks[1].shape[1] != len(kinds):
            raise ConfigError(f"the runs rank other users than {dataset.name}'s {args.split} split")
        print(f"\nA - B, {args.split} {args.metric} (95% bootstrap over users and runs):")
        for label, pattern, runs in zip("AB", args.compare, ranks):
            print(f"{label} ({len(runs)} runs): {pattern}")
        rows = {"all": paired_difference(*ranks, args.metric, args.resamples, seed=args.seed)}
        rows.update(difference_by_kind(*ranks, kinds, args.metric, args.resamples, args.seed))
        for kind, diff in rows.items():
            print(
                f"  {kind:8s} {diff.users:6,} users  A {diff.mean_a:6.2f}  "
                f"B {diff.mean_b:6.2f}  {diff.cell()}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
