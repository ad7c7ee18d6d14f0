"""What each reproduction target runs: one :class:`Experiment` per run dir.

A run's options come from ``configs/<dataset>.yaml`` in one of two ways:

- ``tuned``: the whole file (the AdaSplit configuration chosen by the search)
  plus the experiment's overrides. Table 2's AdaSplit row and every ablation.
- ``budget``: only the file's budget keys (dataset, epochs, patience, history
  length, dimension, validation users), the paper's defaults for everything else, plus the
  overrides. The baselines and the search candidates, so that neither moves
  when the search changes the tuned values.

Run dirs live at ``<results>/<dataset>/<name>``; an ablation whose setting is
the tuned one (e.g. the attention-GRU row of Table 3) reuses the Table 2 run.
A row run with several seeds has one run dir per seed: ``<name>`` for seed 0,
``<name>-seed<k>`` for seed k, and its table cell is their mean and std.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adasplit_env.errors import ConfigError
from adasplit_env.model.config import GROUP_SCORINGS
from agents.config import TrainConfig, adasplit_only_keys, read_config_file

BUDGET_KEYS = (
    "dataset",
    "k_core",
    "epochs",
    "patience",
    "max_len",
    "dim",
    "eval_users",
    "eval_every",
)
# The baselines' learning rate (RecBole 1.2.1's default), unless a variant moves it.
BASELINE_LR = 1e-3
TARGETS = (
    "search",
    "table2",
    "table3",
    "table4",
    "figure4",
    "figure5",
    "plus",
    "plus-ablations",
)
DEFAULT_DATASETS = {
    "search": ("garden", "lastfm", "baby", "beauty"),
    "table2": ("lastfm", "garden", "baby", "beauty", "synthetic"),
    "table3": ("garden", "synthetic"),
    "table4": ("garden", "synthetic"),
    "figure4": ("garden", "synthetic"),
    "figure5": ("garden",),
    "plus": ("garden", "synthetic"),
    "plus-ablations": ("garden", "lastfm", "synthetic"),
}

# The paper's defaults for the searched options: the search's starting point.
PAPER_POINT = {
    "eps": 0.5,
    "beta": 0.1,
    "lambda_o": 0.1,
    "penalty": 1.1,
    "lr": 1e-3,
    "batch_size": 256,
}

# One-at-a-time moves from the paper's point, within the paper's ranges.
SEARCH_MOVES: dict[str, dict[str, Any]] = {
    "default": {},
    "eps-0.2": {"eps": 0.2},
    "eps-0.8": {"eps": 0.8},
    "batch-64": {"batch_size": 64},
    "lr-0.01": {"lr": 0.01},
    "beta-1": {"beta": 1.0},
    "beta-0.01": {"beta": 0.01},
    "lambda_o-1": {"lambda_o": 1.0},
    "lambda_o-0.01": {"lambda_o": 0.01},
    "penalty-0.9": {"penalty": 0.9},
    "penalty-1.3": {"penalty": 1.3},
    # second round on garden: the batch direction further, and every move that beat the default
    "batch-32": {"batch_size": 32},
    "batch-64+eps-0.2+penalty-0.9": {"batch_size": 64, "eps": 0.2, "penalty": 0.9},
}
# Which moves each dataset's search covers. An epoch of the larger datasets
# costs 10-25x garden's, so they try the paper's point and garden's choice.
GARDEN_CHOICE = "batch-64+eps-0.2+penalty-0.9"
# Garden's second search (after the initialisation fix) re-tests the moves that
# made the first choice, not the ten that moved validation NDCG@10 by <= 0.05
# or hurt (REPRODUCTION.md, "Search").
SEARCH_PLAN: dict[str, tuple[str, ...]] = {
    "garden": ("default", "batch-64", "batch-32", "eps-0.2", "penalty-0.9", GARDEN_CHOICE),
    "synthetic": ("default",),
    "lastfm": ("default", GARDEN_CHOICE),
    "baby": ("default", GARDEN_CHOICE),
    "beauty": ("default", GARDEN_CHOICE),
}

# The baselines' light tuning on Garden's validation split, from RecBole's defaults
# (SASRec dropout 0.5, GRU4Rec 0.3, lr 0.001), as a user would try them; run dirs
# baseline-search/<name>; the defaults themselves are Table 2's runs.
BASELINE_MOVES: dict[str, dict[str, Any]] = {
    "sasrec-dropout-0.2": {"model": "sasrec", "dropout": 0.2},
    "sasrec-dropout-0.3": {"model": "sasrec", "dropout": 0.3},
    "sasrec-lr-0.003": {"model": "sasrec", "lr": 0.003},
    "gru4rec-dropout-0.1": {"model": "gru4rec", "dropout": 0.1},
    "gru4rec-dropout-0.5": {"model": "gru4rec", "dropout": 0.5},
    "gru4rec-lr-0.003": {"model": "gru4rec", "lr": 0.003},
}
BASELINE_SEARCH_DATASETS = ("garden",)

ENCODERS = {"bidirectional": "AdaSplit", "causal": "AdaSplit-Single", "none": "AdaSplit-Zero"}
UPDATERS = {"attn_gru": "AdaSplit", "lstm": "AdaSplit-LSTM", "mean": "AdaSplit-AveragePooling"}
CURRICULA = {
    "exponential": "AdaSplit",
    "linear": "AdaSplit-Linear",
    "keep": "AdaSplit-Keep",
    "none": "AdaSplit-None",
}
MAX_LENS = (5, 10, 20, 30, 40)
# Datasets whose histories are much longer than the preset's l, and the l their
# AdaSplit+ ablations also try: LastFM's median history is 41 items (97.6% longer
# than 12), the others' 6, so l = 10 already holds nearly all of theirs.
LONG_HISTORY = {"lastfm": (20, 50)}
# The planted data with an interest's next item drawn at random from the interest
# with probability ``noise`` instead of following the interest's last item (1.0:
# the interest's items in random order), as REPRODUCTION.md finds the real data to
# be (``python -m reproduce.target_interests``); the generator's own 0.05
# is the ordinary synthetic rows.
INTEREST_NOISE = {"synthetic": (0.5, 1.0)}
# Seeds per row when the command line does not say (mean and std of 3; the paper
# model's one-seed ablations cannot order its variants on Garden, see REPRODUCTION.md).
DEFAULT_SEEDS = {"table2": 3, "plus": 3, "plus-ablations": 3}

# Towards AdaSplit+ (docs/design.md, section 7): the tuned paper model, then one option
# added per row on top of an earlier row, its control: (step, label, options,
# the step it builds on; None: the tuned paper model). A step that loses on
# validation is not built on (run dirs plus/<step>).
PLUS_STEPS: tuple[tuple[str, str, dict[str, Any], str | None], ...] = (
    ("start-zero", "+ groups start at zero (no e_u)", {"group_start": "zero"}, None),
    (
        "rl-policy",
        "start-zero + L_rl stopped at the policy, batch-mean baseline",
        {"rl_gradient": "policy", "reinforce_baseline": "batch_mean"},
        "start-zero",
    ),
    # rl-policy lost on Garden's validation (7.6 vs 8.5): the readout builds on start-zero
    ("readout-sasrec", "start-zero + SASRec readout", {"readout": "sasrec"}, "start-zero"),
    # neither of these two beat the readout on validation: configs/garden-plus.yaml
    (
        "readout-standard",
        "readout-sasrec + standard encoder block",
        {"encoder_block": "standard"},
        "readout-sasrec",
    ),
    ("readout-max", "readout-sasrec + max scoring", {"scoring": "max"}, "readout-sasrec"),
    # The allocator that splits. A reward that knows the recommendation (the target's
    # log-likelihood, no paper terms, free creation) with max scoring: with the
    # paper's join MLP (linear logits) it opens a group per item (synthetic ARI 0) ...
    (
        "likelihood",
        "rl-policy + likelihood reward only, free creation, max scoring, standard block",
        {
            "scoring": "max",
            "encoder_block": "standard",
            "likelihood_reward": 1.0,
            "allocation_reward_weight": 0.0,
            "lambda_o": 0.0,
            "curriculum": "none",
            "join_logit": "linear",
        },
        "rl-policy",
    ),
    # ... and with the affinity join it builds interest groups
    ("affinity", "likelihood + affinity join logit", {"join_logit": "affinity"}, "likelihood"),
    (
        "affinity-single",
        "affinity, one group (max_groups 1): its control",
        {"max_groups": 1},
        "affinity",
    ),
    ("affinity-readout", "affinity + SASRec readout", {"readout": "sasrec"}, "affinity"),
    # A lead from Garden's plus-ablations of the likelihood step (validation 10.01, one
    # seed); over 6 seeds level with it (9.38 +- 0.62 vs 9.40 +- 0.16) and unstable
    ("causal", "likelihood + causal encoder", {"encoder": "causal"}, "likelihood"),
)


@dataclass(frozen=True)
class Experiment:
    """One run: where it lives, what it is called in a table, how it is configured."""

    dataset: str
    name: str  # run dir below <results>/<dataset>/
    label: str
    base: str = "tuned"  # "tuned" | "budget" | "popularity"
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    variant: Any = None  # the ablated option's value (Tables 3-4, Figures 4-5)
    seed: int = 0

    def run_dir(self, results: Path) -> Path:
        name = self.name if self.seed == 0 else f"{self.name}-seed{self.seed}"
        return Path(results) / self.dataset / name

    @property
    def row(self) -> tuple[str, str]:
        """What the seeds of one table row share."""
        return self.name, self.label

    def with_seed(self, seed: int) -> Experiment:
        return replace(self, seed=seed, overrides=dict(self.overrides))


def config_path(configs: Path, dataset: str) -> Path:
    path = Path(configs) / f"{dataset}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no config for dataset {dataset!r}")
    return path


def tuned_values(configs: Path, dataset: str) -> dict[str, Any]:
    return _read_config(config_path(configs, dataset))


def _read_config(path: Path) -> dict[str, Any]:
    """``read_config_file``, parsed once per file content: planning a target reads
    the same few configs for every row (hundreds of YAML parses for ``all``)."""
    return dict(_parsed_config(str(path), Path(path).read_bytes()))


@functools.lru_cache(maxsize=64)
def _parsed_config(path: str, content: bytes) -> dict[str, Any]:
    return read_config_file(path)  # content: the cache key, so an edited file is re-read


def plus_config_path(configs: Path, dataset: str) -> Path:
    """``configs/<dataset>-plus.yaml``: the AdaSplit+ preset, where one has been chosen."""
    return Path(configs) / f"{dataset}-plus.yaml"


def expected_options(experiment: Experiment, configs: Path) -> dict[str, Any]:
    """The train_agent options of ``experiment`` (keys as TrainConfig fields)."""
    if experiment.base == "plus":  # the AdaSplit+ preset file, whole
        path = plus_config_path(configs, experiment.dataset)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        values = _read_config(path)
        seed = {"seed": experiment.seed} if experiment.seed else {}
        return {**values, **experiment.overrides, **seed}
    values = tuned_values(configs, experiment.dataset)
    if experiment.base == "budget":
        values = {key: values[key] for key in BUDGET_KEYS if key in values}
        values["lr"] = BASELINE_LR  # RecBole's, not the tuned AdaSplit's nor train_agent's default
    seed = {"seed": experiment.seed} if experiment.seed else {}
    return {**values, **experiment.overrides, **seed}


# Options that change how a run is carried out, not what it computes (``train_path``:
# the same loss and gradients, tests/test_parallel.py; like ``threads``, float rounding;
# ``log_every``: how often the logs sample the updates, tests/test_training.py).
RUN_ONLY_KEYS = (
    "run_dir",
    "progress",
    "threads",
    "device",
    "data_dir",
    "train_path",
    "log_every",
)


def comparable(options: dict[str, Any]) -> dict[str, Any]:
    """The full option set (defaults filled in) minus what cannot change the result."""
    full = TrainConfig.from_dict(options).to_dict()
    # the options the baselines (model sasrec|gru4rec) ignore are declared so in TrainConfig
    dropped = RUN_ONLY_KEYS + (adasplit_only_keys() if full["model"] != "adasplit" else ())
    return {key: value for key, value in full.items() if key not in dropped}


def search_candidates(dataset: str) -> list[Experiment]:
    """The search's runs on ``dataset``: the paper's point moved as SEARCH_PLAN says."""
    return [
        Experiment(dataset, f"search/{move}", move, "budget", {**PAPER_POINT, **SEARCH_MOVES[move]})
        for move in SEARCH_PLAN.get(dataset, ("default",))
    ]


def baseline_candidates(dataset: str) -> list[Experiment]:
    """The baselines' tuning runs on ``dataset`` (RecBole's defaults are Table 2's runs)."""
    if dataset not in BASELINE_SEARCH_DATASETS:
        return []
    defaults = [
        Experiment(dataset, model, f"{model} (RecBole defaults)", "budget", {"model": model})
        for model in ("sasrec", "gru4rec")
    ]
    moves = [
        Experiment(dataset, f"baseline-search/{name}", name, "budget", dict(options))
        for name, options in BASELINE_MOVES.items()
    ]
    return defaults + moves


def tuned_run_name(dataset: str, configs: Path) -> str:
    """The run dir of the tuned configuration: a search candidate when one is it."""
    tuned = comparable(tuned_values(configs, dataset))
    for candidate in search_candidates(dataset):
        if comparable(expected_options(candidate, configs)) == tuned:
            return candidate.name
    return "adasplit"


def plus_row(dataset: str, configs: Path) -> list[Experiment]:
    """Table 2's AdaSplit+ row when ``configs/<dataset>-plus.yaml`` exists: the run dir
    of the AdaSplit+ step equal to it, else ``adasplit-plus``."""
    if not plus_config_path(configs, dataset).is_file():
        return []
    row = Experiment(dataset, "adasplit-plus", "AdaSplit+", "plus", variant="adasplit+")
    return [_as_plus_step(row, configs)]


def _as_plus_step(row: Experiment, configs: Path) -> Experiment:
    """``row`` under the run dir of the AdaSplit+ step with the same options, if any."""
    wanted = comparable(expected_options(row, configs))
    for step in _rows("plus", row.dataset, configs)[1:-1]:
        if comparable(expected_options(step, configs)) == wanted:
            return replace(row, name=step.name)
    return row


def _plus_variants(dataset: str, configs: Path) -> list[Experiment]:
    """Tables 3-4 and Figure 4 for AdaSplit+: the preset, then the preset with its
    group updater, curriculum or encoder swapped, one at a time, and its one-group
    control (none without a preset)."""
    preset = plus_row(dataset, configs)
    if not preset:
        return []
    chosen = comparable(expected_options(preset[0], configs))
    rows = [replace(preset[0], label="AdaSplit+ (the preset)")]
    # run dirs under the preset's own run name: a changed preset gets new ablations
    # instead of showing those of the old one
    folder = f"plus-ablations/{preset[0].name.rsplit('/', 1)[-1]}"
    for key, labels, prefix in (
        ("group_updater", UPDATERS, "updater"),
        ("curriculum", CURRICULA, "curriculum"),
        ("encoder", ENCODERS, "encoder"),
    ):
        for value in labels:
            if chosen[key] != value:
                rows.append(
                    Experiment(
                        dataset,
                        f"{folder}/{prefix}-{value}",
                        f"AdaSplit+, {key} {value}",
                        "plus",
                        {key: value},
                        variant=f"{prefix}-{value}",
                    )
                )
    # the control that says whether the groups carry the preset's gain: the same
    # model, allocator and readout with every item in one group
    if chosen["max_groups"] != 1:
        rows.append(
            Experiment(
                dataset,
                f"{folder}/max-groups-1",
                "AdaSplit+, one group (max_groups 1)",
                "plus",
                {"max_groups": 1},
                variant="max-groups-1",
            )
        )
    # the learned allocator swapped for co-occurrence clusters (not learned): whether
    # interest groups pay where the learned one splits by time (adasplit_env/analysis/coherence.py)
    if chosen["join_logit"] != "cluster" and chosen["scoring"] in GROUP_SCORINGS:
        rows.append(
            Experiment(
                dataset,
                f"{folder}/join-cluster",
                "AdaSplit+, groups = co-occurrence clusters (join_logit cluster)",
                "plus",
                {"join_logit": "cluster"},
                variant="join-cluster",
            )
        )
    rows += _group_encoder_rows(dataset, folder, chosen)
    rows += _greedy_baseline_rows(dataset, folder, chosen)
    rows += _long_history_rows(dataset, folder, chosen)
    rows += _interest_noise_rows(dataset, folder)
    # a swap that equals an AdaSplit+ step reads that step's runs instead of a copy
    return [rows[0], *(_as_plus_step(row, configs) for row in rows[1:])]


def _group_encoder_rows(dataset: str, folder: str, chosen: dict[str, Any]) -> list[Experiment]:
    """Whether groups pay when each is read by the sequence encoder (``group_repr
    encoder``): alone (readout group) with the learned allocator, the cluster rule, and
    the one-group control, which is SASRec trained in AdaSplit's loop; and beside a
    SASRec state of the whole history (readout sasrec: ``SASRec(history) . e_c + max_i
    group_i . e_c``), whose one-group control is two SASRec encoders summed; and the
    cluster groups weighed by that state (scoring attend) instead of their max; and the
    learned allocator of the first row with a self-critical REINFORCE baseline."""
    # max or lse: rows with readout group cannot take attend (it reads the SASRec state)
    if chosen["group_repr"] == "encoder" or chosen["scoring"] not in ("max", "lse"):
        return []
    encoder = {"group_repr": "encoder", "readout": "group"}
    beside = {"group_repr": "encoder", "readout": "sasrec"}
    cluster = {"join_logit": "cluster"}
    rows = (
        ("group-encoder", " (group_repr encoder, readout group)", encoder),
        ("group-encoder-cluster", ", cluster allocator", {**encoder, **cluster}),
        ("group-encoder-max-groups-1", ", one group (SASRec in AdaSplit's loop)",
         {**encoder, "max_groups": 1}),
        ("group-encoder-beside", " beside the SASRec state (readout sasrec)", beside),
        ("group-encoder-beside-cluster", " beside the SASRec state, cluster allocator",
         {**beside, **cluster}),
        ("group-encoder-beside-max-groups-1", " beside the SASRec state, one group (two SASRec "
         "encoders summed)", {**beside, "max_groups": 1}),
        # the context weighs the groups instead of a max; with one group it is the same
        # model as the row above, which is its control
        ("group-encoder-attend-cluster", " beside the SASRec state, cluster allocator, groups "
         "weighed by the state (scoring attend)", {**beside, **cluster, "scoring": "attend"}),
    )  # fmt: skip
    if _learns_with_batch_mean(chosen):
        # the learner of group-encoder with a self-critical baseline; that row is its control
        greedy = {**encoder, **GREEDY_BASELINE}
        rows += (("group-encoder-greedy", ", greedy baseline (reinforce_baseline greedy)", greedy),)
    return _plus_rows(dataset, folder, "AdaSplit+, group encoder", rows)


GREEDY_BASELINE = {"reinforce_baseline": "greedy"}


def _learns_with_batch_mean(chosen: dict[str, Any]) -> bool:
    """Whether the preset's allocator is learned by REINFORCE without the greedy baseline."""
    return (
        chosen["algo"] == "reinforce"
        and chosen["join_logit"] != "cluster"
        and chosen["reinforce_baseline"] != "greedy"
    )


def _greedy_baseline_rows(dataset: str, folder: str, chosen: dict[str, Any]) -> list[Experiment]:
    """Whether the learned allocator splits badly for want of a better gradient: the
    preset with REINFORCE's baseline the argmax rollout's return (self-critical) instead
    of its own; the preset is the control (the encoder-group learner's row is among
    :func:`_group_encoder_rows`)."""
    if not _learns_with_batch_mean(chosen):
        return []
    rows = (("baseline-greedy", ", greedy baseline (reinforce_baseline greedy)", GREEDY_BASELINE),)
    return _plus_rows(dataset, folder, "AdaSplit+", rows)


def _plus_rows(dataset: str, folder: str, label: str, rows) -> list[Experiment]:
    """One ``plus`` experiment per ``(name, label suffix, overrides)`` under ``folder``."""
    return [
        Experiment(dataset, f"{folder}/{name}", f"{label}{suffix}", "plus", overrides,
                   variant=name)
        for name, suffix, overrides in rows
    ]  # fmt: skip


def _long_history_rows(dataset: str, folder: str, chosen: dict[str, Any]) -> list[Experiment]:
    """Whether the groups need room: the preset, its one-group control and SASRec at
    each longer history of LONG_HISTORY, beside SASRec at the preset's own l."""
    lengths = [n for n in LONG_HISTORY.get(dataset, ()) if n != chosen["max_len"]]
    if not lengths:
        return []
    sasrec = {"model": "sasrec"}
    rows = []
    for length in lengths:
        rows += [
            Experiment(dataset, f"{folder}/max-len-{length}", f"AdaSplit+, l = {length}", "plus",
                       {"max_len": length}, variant=f"max-len-{length}"),
            Experiment(dataset, f"{folder}/max-len-{length}-max-groups-1",
                       f"AdaSplit+, one group, l = {length}", "plus",
                       {"max_len": length, "max_groups": 1},
                       variant=f"max-len-{length}-max-groups-1"),
            Experiment(dataset, f"sasrec-max-len-{length}", f"SASRec, l = {length}", "budget",
                       {**sasrec, "max_len": length}, variant=f"sasrec-max-len-{length}"),
        ]  # fmt: skip
    table2 = Experiment(dataset, "sasrec", f"SASRec (Table 2), l = {chosen['max_len']}",
                        "budget", sasrec, variant="sasrec")  # fmt: skip
    return rows[:2] + [table2] + rows[2:]


def _interest_noise_rows(dataset: str, folder: str) -> list[Experiment]:
    """Whether the groups need an interest whose last item predicts its next one: the
    preset, its one-group control and SASRec on INTEREST_NOISE's versions of the data
    (the same users, interests and switches; ``synthetic:noise=<level>``)."""
    rows = []
    for level in INTEREST_NOISE.get(dataset, ()):
        data = {"dataset": f"{dataset}:noise={level}"}
        said = f"interest's next item at random w.p. {level}"
        rows += _plus_rows(dataset, folder, "AdaSplit+", (
            (f"noise-{level}", f", {said}", data),
            (f"noise-{level}-max-groups-1", f", one group, {said}", {**data, "max_groups": 1}),
        ))  # fmt: skip
        rows.append(
            Experiment(dataset, f"sasrec-noise-{level}", f"SASRec, {said}", "budget",
                       {**data, "model": "sasrec"}, variant=f"sasrec-noise-{level}")
        )  # fmt: skip
    return rows


def _variants(dataset, configs, key, labels, prefix) -> list[Experiment]:
    tuned = comparable(tuned_values(configs, dataset))
    runs = []
    for value, label in labels.items():
        if tuned[key] == value:
            runs.append(Experiment(dataset, tuned_run_name(dataset, configs), label, variant=value))
        else:
            runs.append(
                Experiment(
                    dataset, f"{prefix}-{value}", label, overrides={key: value}, variant=value
                )
            )
    return runs


def experiments(
    target: str, dataset: str, configs: Path, seeds: int | None = None
) -> list[Experiment]:
    """The runs ``target`` needs on ``dataset``, in table order, each row with ``seeds``
    seeds (default: DEFAULT_SEEDS, else 1; the popularity floor is deterministic: one)."""
    seeds = DEFAULT_SEEDS.get(target, 1) if seeds is None else seeds
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    return [
        experiment.with_seed(seed)
        for experiment in _rows(target, dataset, configs)
        for seed in range(1 if experiment.base == "popularity" else seeds)
    ]


def with_finished_seeds(runs: list[Experiment], results: Path) -> list[Experiment]:
    """``runs`` with, after each row's last seed, the further seeds whose run dirs have
    finished (those of a ``--seeds 6`` run, say): a table uses every seed there is."""
    extended = []
    for index, run in enumerate(runs):
        extended.append(run)
        following = runs[index + 1] if index + 1 < len(runs) else None
        if run.base == "popularity" or (following is not None and following.row == run.row):
            continue
        seed = run.seed + 1
        while (run.with_seed(seed).run_dir(results) / "metrics.json").is_file():
            extended.append(run.with_seed(seed))
            seed += 1
    return extended


def _rows(target: str, dataset: str, configs: Path) -> list[Experiment]:
    if target == "search":
        return search_candidates(dataset) + baseline_candidates(dataset)
    if target == "table2":
        return [
            Experiment(dataset, tuned_run_name(dataset, configs), "AdaSplit", variant="adasplit"),
            *plus_row(dataset, configs),
            Experiment(dataset, "sasrec", "SASRec", "budget", {"model": "sasrec"}, "sasrec"),
            Experiment(dataset, "gru4rec", "GRU4Rec", "budget", {"model": "gru4rec"}, "gru4rec"),
            Experiment(dataset, "pop", "Popularity", "popularity", variant="pop"),
        ]
    if target == "table3":
        return _variants(dataset, configs, "group_updater", UPDATERS, "updater")
    if target == "table4":
        return _variants(dataset, configs, "curriculum", CURRICULA, "curriculum")
    if target == "figure4":
        return _variants(dataset, configs, "encoder", ENCODERS, "encoder")
    if target == "plus":
        rows = [
            Experiment(
                dataset,
                tuned_run_name(dataset, configs),
                "AdaSplit (paper, tuned)",
                variant="paper",
            )
        ]
        built: dict[str | None, dict[str, Any]] = {None: {}}
        for step, label, options, base in PLUS_STEPS:
            overrides = built[step] = {**built[base], **options}
            rows.append(
                Experiment(dataset, f"plus/{step}", label, overrides=overrides, variant=step)
            )
        # the sequence model to beat: Table 2's SASRec runs
        sasrec = Experiment(dataset, "sasrec", "SASRec (Table 2)", "budget", {"model": "sasrec"})
        return [*rows, sasrec]
    if target == "plus-ablations":
        return _plus_variants(dataset, configs)
    if target == "figure5":
        labels = {length: f"l = {length}" for length in MAX_LENS}
        return _variants(dataset, configs, "max_len", labels, "maxlen")
    raise ConfigError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
