"""What happens around the epoch loop, as callbacks of :class:`agents.trainer.Trainer`.

The trainer builds the run and loops over epochs; after each epoch it calls every
callback's :meth:`Callback.on_epoch_end` with the epoch's record, which a callback
may add to and which ends up in ``metrics.json``'s history. The built-in ones:

- :class:`Validation`: validation NDCG@10 every ``eval_every`` epochs, ``best.pt`` at
  each improvement, and the early-stopping count (shared by all ranks);
- :class:`LastCheckpoint`: ``last.pt`` after every epoch (rank 0), with everything a
  resume needs (optimiser, progress, every random generator), and the resume itself;
- :class:`TensorBoard`: the logged updates' stats (every ``log_every``-th update and
  each epoch's first), each epoch's new entries (validation, throughput, a user
  callback's) and the final metrics, as event files in the run dir (rank 0).

A callback sees the run start (:meth:`Callback.on_fit_start`), every logged optimiser
update (:meth:`Callback.on_update`), every epoch's end and the run's end
(:meth:`Callback.on_fit_end`, also when it stops on an error or an interrupt).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from adasplit_env.analysis.allocation_quality import allocation_quality
from adasplit_env.checkpoint import read_checkpoint, save_checkpoint
from adasplit_env.errors import CheckpointError
from adasplit_env.metrics import METRIC_KEYS

SELECTION_METRIC = "NDCG@10"


@dataclass
class Progress:
    """What a resumed run needs besides the weights."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    evals_without_gain: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0  # per-epoch validation
    samples_seen: int = 0
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(vars(self))


class Callback:
    """A hook of the training loop; every method is optional."""

    def on_fit_start(self, trainer, resumed: bool) -> None:
        """Before the first epoch (of this process: after a resume, the next one)."""

    def on_update(self, trainer, stats: dict) -> None:
        """After each logged optimiser update (``Trainer.log_due``: every ``log_every``-th
        and each epoch's first) with its stats; ``trainer.progress.global_step`` counts
        every update, logged or not."""

    def on_epoch_end(self, trainer, record: dict) -> None:
        """After epoch ``trainer.progress.epoch``; ``record`` is that epoch's history entry."""

    def on_fit_end(self, trainer, results: dict | None) -> None:
        """When the run ends: ``results`` is what ``metrics.json`` holds, or None where
        the run stopped early (an error, an interrupt) or on a rank other than 0."""


class Validation(Callback):
    """Rank 0 validates and keeps ``best.pt``; every rank learns the early-stopping count."""

    def on_epoch_end(self, trainer, record) -> None:
        epoch, config = trainer.progress.epoch, trainer.config
        if epoch % config.eval_every and epoch != config.epochs:
            return
        if trainer.is_main:
            record.update(self._validate(trainer))
        if trainer.world_size > 1:
            progress = trainer.progress
            shared = [progress.evals_without_gain, progress.best_epoch]
            dist.broadcast_object_list(shared, src=0)
            progress.evals_without_gain, progress.best_epoch = shared

    @staticmethod
    def _validate(trainer) -> dict:
        progress = trainer.progress
        start = time.perf_counter()
        metrics = trainer.evaluate("val", trainer.eval_subset)
        record = {f"val/{key}": metrics[key] for key in METRIC_KEYS}
        if trainer.dataset.item_groups is not None and trainer.recommender.allocates:
            quality = allocation_quality(trainer.process, trainer.dataset, "val")
            record["allocation/ari"] = quality.all_users
        if metrics[SELECTION_METRIC] > progress.best_metric:
            progress.best_metric = metrics[SELECTION_METRIC]
            progress.best_epoch = progress.epoch
            progress.evals_without_gain = 0
            save_checkpoint(trainer.run_dir / "best.pt", trainer.payload(epoch=progress.epoch))
        else:
            progress.evals_without_gain += 1
        progress.eval_seconds += time.perf_counter() - start
        return record


class LastCheckpoint(Callback):
    """``last.pt`` after every epoch, and the resume from it."""

    def on_epoch_end(self, trainer, record) -> None:
        if trainer.is_main:
            self.save(trainer)

    @staticmethod
    def save(trainer) -> None:
        cuda = trainer.device.type == "cuda"
        save_checkpoint(
            trainer.run_dir / "last.pt",
            trainer.payload(
                optimizer_state=trainer.optimizer.state_dict(),
                progress=trainer.progress.to_dict(),
                sampling_state=trainer.sampling.get_state(),
                # the global generators (dropout, anything unseeded): a resume replays them
                torch_rng_state=torch.get_rng_state(),
                **({"cuda_rng_states": torch.cuda.get_rng_state_all()} if cuda else {}),
            ),
        )

    @staticmethod
    def resume(trainer) -> None:
        """Restore the agent, the optimiser, the progress and the generators."""
        path = trainer.run_dir / "last.pt"
        payload = read_checkpoint(path, trainer.device)
        info, dataset = payload["dataset"], trainer.dataset
        if (info["num_users"], info["num_items"]) != (dataset.num_users, dataset.num_items):
            raise CheckpointError(
                f"{path}: trained on {info['num_users']} users and {info['num_items']} items, "
                f"the dataset has {dataset.num_users} and {dataset.num_items}"
            )
        try:
            trainer.agent.load_state_dict(payload["agent_state"])
            trainer.optimizer.load_state_dict(payload["optimizer_state"])
            for group in trainer.optimizer.param_groups:  # the config decides, not the file
                group["fused"] = True if trainer.config.fused_adam else None
            trainer.progress = Progress(**payload["progress"])
            if "torch_rng_state" in payload:  # written before 2026-12 without it
                torch.set_rng_state(payload["torch_rng_state"].cpu())
            if "cuda_rng_states" in payload and trainer.device.type == "cuda":
                states = payload["cuda_rng_states"]
                if len(states) == torch.cuda.device_count():
                    torch.cuda.set_rng_state_all([state.cpu() for state in states])
            sampling_state = payload["sampling_state"].cpu()
            if sampling_state.numel() == trainer.sampling.get_state().numel():
                trainer.sampling.set_state(sampling_state)
            else:  # written on another kind of device: a CUDA sampler's state is not a CPU one's
                trainer.sampling.manual_seed(
                    trainer.config.seed + trainer.rank + 1_000_003 * trainer.progress.epoch
                )
                tqdm.write(
                    f"{path}: its sampler ran on another kind of device; "
                    f"resuming with one seeded from (seed, epoch {trainer.progress.epoch})"
                )
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: cannot resume from it ({err})") from None


class TensorBoard(Callback):
    """Event files in the run dir (rank 0): each update's stats at its step (``hist/``
    entries as histograms), each epoch's record entries that no update logged
    (validation, throughput, a user callback's numbers) at the epoch's last step, and
    the final metrics as ``final/<split>/<metric>``."""

    _NOT_LOGGED = ("epoch", "seconds")

    def __init__(self) -> None:
        self.writer: SummaryWriter | None = None
        self._update_tags: set[str] = set()

    def on_fit_start(self, trainer, resumed) -> None:
        if trainer.is_main:
            # a resume drops what the killed run logged after its last.pt
            purge = trainer.progress.global_step if resumed else None
            self.writer = SummaryWriter(str(trainer.run_dir), purge_step=purge)

    def on_update(self, trainer, stats) -> None:
        if self.writer is None:
            return
        step = trainer.progress.global_step
        for tag, value in stats.items():
            self._update_tags.add(tag)
            if tag.startswith("hist/"):
                self.writer.add_histogram(tag[5:], value, step)
            else:
                self.writer.add_scalar(tag, value, step)

    def on_epoch_end(self, trainer, record) -> None:
        if self.writer is None:
            return
        for tag, value in record.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and tag not in self._NOT_LOGGED and tag not in self._update_tags:
                self.writer.add_scalar(tag, value, trainer.progress.global_step)
        self.writer.flush()

    def on_fit_end(self, trainer, results) -> None:
        if self.writer is None:
            return
        for split in ("val", "test"):
            for key, value in (results or {}).get(split, {}).items():
                self.writer.add_scalar(f"final/{split}/{key}", value, trainer.progress.global_step)
        self.writer.close()
        self.writer = None
