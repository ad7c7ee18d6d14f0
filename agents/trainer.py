"""The shared training loop: epochs, validation, early stopping, logs, checkpoints.

Every agent is driven by :func:`train`; it differs from another agent only
in :meth:`agents.base.Agent.loss`. A run directory holds ``config.json``,
TensorBoard event files, ``last.pt`` (everything needed to resume, written
after every epoch), ``best.pt`` (the weights with the best validation
NDCG@10) and, at the end, ``metrics.json``.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from adasplit_env.analysis.allocation_quality import (
    Allocation,
    allocate_split,
)
from adasplit_env.analysis.summary import allocation_summary
from adasplit_env.checkpoint import make_payload, read_checkpoint
from adasplit_env.data.datasets import Dataset, load_dataset, synthetic_spec
from adasplit_env.errors import CheckpointError, ConfigError
from adasplit_env.evaluation import USER_RANKS_FILE, evaluate_ranks, write_user_ranks
from adasplit_env.io import atomic_write_json, show_progress
from adasplit_env.metrics import format_metrics_table, metrics_from_ranks, split_metrics
from adasplit_env.recommenders import RECOMMENDERS
from agents import resolve_agent
from agents.base import Agent, shard_batch
from agents.callbacks import (
    SELECTION_METRIC,
    Callback,
    LastCheckpoint,
    Progress,
    TensorBoard,
    Validation,
)
from agents.config import TrainConfig
from agents.supervised import SupervisedAgent


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda asked for, but torch sees no CUDA device")
        # one GPU per process under torchrun
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(name)


def distributed_context() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torch.distributed is initialised (torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def machine_description(device: torch.device) -> str:
    """CPU model and core count (and the GPU when used), for the timing records."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text


def default_run_dir(config: TrainConfig) -> Path:
    dataset = Path(config.dataset).name.split(".")[0]
    if synthetic_spec(config.dataset) is not None:  # synthetic:noise=1.0 -> synthetic-noise-1.0
        dataset = re.sub(r"[:=,]+", "-", config.dataset)
    algo = config.algo.replace(":", "-").replace(".", "-")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{dataset}-{algo}-{stamp}"


class _TerminationAsInterrupt:
    """Turn SIGTERM into KeyboardInterrupt so a kill ends like Ctrl-C."""

    def __enter__(self):
        self._previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path | None = None,
        dataset: Dataset | None = None,
        callbacks: list[Callback] | None = None,
    ):
        config.validate()
        self.config = config
        self.rank, self.world_size = distributed_context()
        self.is_main = self.rank == 0
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = pick_device(config.device)
        self.dataset = dataset or load_dataset(
            config.dataset, config.data_dir, k_core=config.k_core, format=config.format
        )
        self.run_dir = Path(run_dir or config.run_dir or default_run_dir(config))
        torch.manual_seed(config.seed)
        self.rewards = config.reward
        self.recommender = RECOMMENDERS[config.model].build(
            asdict(config.model_options),
            self.dataset.num_users,
            self.dataset.num_items,
            self.rewards,
        )
        self.model = self.recommender.model
        self.process = self.recommender.process  # None: no allocation to learn or measure
        self.recommender.fit(self.dataset.split, config.seed)
        self.recommender.to(self.device)
        if self.recommender.allocates:
            if config.compile:
                self.process.compile()
            self.agent = resolve_agent(config.algo)(self.process, config).to(self.device)
        else:
            self.agent = SupervisedAgent(self.recommender, config).to(self.device)
        self.train_samples = self.dataset.split.train_samples(config.model_options.max_len)
        evaluated = len(self.dataset.split.evaluated_users())
        if config.eval_users and config.eval_users < evaluated:
            rng = np.random.default_rng(config.seed)
            self.eval_subset = np.sort(rng.choice(evaluated, config.eval_users, replace=False))
        else:
            self.eval_subset = None
        self.progress = Progress()
        # validation (best.pt, early stopping) first, so that last.pt holds its outcome;
        # TensorBoard last, so that it logs what the others added to an epoch's record
        self.callbacks: list[Callback] = [
            Validation(),
            LastCheckpoint(),
            *(callbacks or ()),
            TensorBoard(),
        ]
        self.running: dict[str, float] = {}
        self.epoch_start_step = 0
        self.sampling = torch.Generator(device=self.device).manual_seed(config.seed + self.rank)
        self.agent.setup(self)
        self.loss_module = self.agent
        if self.world_size > 1:
            if type(self.agent).run_epoch is not Agent.run_epoch:
                raise ConfigError(
                    f"--algo {config.algo} runs its own epochs; data-parallel training "
                    "supports the per-batch learners (reinforce, a2c, the baselines)"
                )
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.loss_module = DistributedDataParallel(self.agent, device_ids=device_ids)
        self.optimizer = torch.optim.Adam(
            self.agent.trainable_parameters(),
            lr=config.lr,
            weight_decay=config.weight_decay,
            fused=True if config.fused_adam else None,
        )

    # checkpoints -------------------------------------------------------
    def payload(self, **extra):
        """A checkpoint of the run as it is now, with ``extra`` entries."""
        return make_payload(
            self.model,
            self.rewards,
            self.dataset,
            self.config.dataset,
            self.config.to_dict(),
            algo=self.config.algo,
            model_type=self.config.model,
            agent_state=self.agent.state_dict(),
            **extra,
        )

    def save_last(self) -> None:
        LastCheckpoint.save(self)

    def resume(self) -> None:
        LastCheckpoint.resume(self)

    # evaluation --------------------------------------------------------
    def evaluate(self, split: str, users: np.ndarray | None = None, progress: bool = False) -> dict:
        return metrics_from_ranks(self.evaluate_ranks(split, users, progress))

    def evaluate_ranks(
        self, split: str, users: np.ndarray | None = None, progress: bool = False
    ) -> torch.Tensor:
        """Each target's rank, exact up to the metrics' largest cutoff (10)."""
        self.model.eval()
        try:
            return evaluate_ranks(
                self.agent.rank_scores,
                self.dataset,
                split=split,
                max_len=self.config.model_options.max_len,
                exclude_history=self.config.exclude_history,
                batch_size=256,
                users=users,
                progress=progress,
                takes_cutoff=True,
            )
        finally:
            self.model.train()

    # training ----------------------------------------------------------
    def epoch_batches(self, epoch: int) -> list:
        """The epoch's mini-batches, shuffled by a seed of (seed, epoch) so resumes replay it."""
        shuffle = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        batches = list(
            self.train_samples.batches(self.config.batch_size, shuffle=True, generator=shuffle)
        )
        if self.world_size > 1 and len(batches[-1]) < self.world_size:
            batches.pop()  # every rank needs at least one sample of each batch
        return batches

    def shard(self, batch):
        """This process's share of a batch (all of it without torch.distributed)."""
        return shard_batch(batch, self.rank, self.world_size)

    def progress_bar(self, iterable, epoch: int, total: int | None = None):
        return tqdm(
            iterable,
            total=total,
            desc=f"epoch {epoch}/{self.config.epochs}",
            disable=not (show_progress(self.config.progress) and self.is_main),
            leave=False,
        )

    def optimize(self, loss: torch.Tensor, stats: dict) -> None:
        """One step of the recommender's optimiser on ``loss``, then log ``stats``."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at update {self.progress.global_step}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # a plug-in's stats need not name it: the loss minimised
        if self.log_due() and "losses/total" not in stats:
            stats = {**stats, "losses/total": float(loss.detach())}
        self.log(stats)

    def log_due(self) -> bool:
        """Whether the next update's stats reach the callbacks: every ``log_every``-th
        update (the run's first included) and each epoch's first, so that every epoch's
        record has them. An agent may skip what only the logs read in the others
        (:attr:`Agent.log_stats`)."""
        step = self.progress.global_step
        return step % self.config.log_every == 0 or step == self.epoch_start_step

    def log(self, stats: dict) -> None:
        """Count one update; where it is due (:meth:`log_due`), hand its stats to the
        callbacks (TensorBoard logs them) and keep running means of them for the progress
        bar and the epoch's record."""
        due = self.log_due()
        self.progress.global_step += 1
        if not due:
            return
        for callback in self.callbacks:
            callback.on_update(self, stats)
        for key in ("losses/total", "losses/seq", "charts/episode_return", "groups/per_episode"):
            if key in stats:
                self.running[key] = 0.9 * self.running.get(key, stats[key]) + 0.1 * stats[key]

    def bar_postfix(self) -> dict:
        return {
            "loss": f"{self.running.get('losses/total', 0):.3f}",
            "ret": f"{self.running.get('charts/episode_return', 0):.2f}",
            "groups": f"{self.running.get('groups/per_episode', 0):.2f}",
        }

    def train_epoch(self) -> tuple[float, dict]:
        epoch = self.progress.epoch + 1
        self.model.train()
        self.running = {}
        self.epoch_start_step = self.progress.global_step
        start = time.perf_counter()
        self.agent.run_epoch(self, epoch)
        return time.perf_counter() - start, dict(self.running)

    def fit(self, resume: bool = False) -> dict:
        config = self.config
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.world_size > 1:
            dist.barrier()
        if resume:
            self.resume()
        results = None
        # SIGTERM ends like Ctrl-C from here on, also right after config.json is written
        with _TerminationAsInterrupt():
            if self.is_main:
                atomic_write_json(self.run_dir / "config.json", config.to_dict())
            for callback in self.callbacks:
                callback.on_fit_start(self, resume)
            try:
                while self.progress.epoch < config.epochs:
                    if config.patience and self.progress.evals_without_gain >= config.patience:
                        break
                    seconds, running = self.train_epoch()
                    samples = len(self.train_samples)
                    self.progress.epoch += 1
                    self.progress.train_seconds += seconds
                    self.progress.samples_seen += samples
                    record = {
                        "epoch": self.progress.epoch,
                        "seconds": seconds,
                        "charts/samples_per_second": samples / seconds,
                        **running,
                    }
                    # appended first: the callbacks fill it in place, and last.pt holds it
                    self.progress.history.append(record)
                    for callback in self.callbacks:
                        callback.on_epoch_end(self, record)
                    if self.is_main:
                        tqdm.write(self.epoch_line(record))
                if self.is_main:
                    if not (self.run_dir / "best.pt").exists():
                        raise CheckpointError(
                            "training ended before any validation; no best.pt to report"
                        )
                    results = self.final_report()
            finally:
                for callback in self.callbacks:
                    callback.on_fit_end(self, results)
        return results or {}

    def epoch_line(self, record: dict) -> str:
        """One short aligned console line per epoch (the full record is in TensorBoard)."""
        parts = [
            f"epoch {record['epoch']:>3d}/{self.config.epochs}",
            f"{record['seconds']:6.1f} s",
            (
                f"loss {record['losses/total']:7.4f}"
                if "losses/total" in record
                else "loss       –"  # an agent that logs no losses/total and calls log() itself
            ),
        ]
        if "charts/episode_return" in record:
            parts.append(f"return {record['charts/episode_return']:8.2f}")
            parts.append(f"groups {record['groups/per_episode']:5.2f}")
        key = f"val/{SELECTION_METRIC}"
        if key in record:
            parts.append(f"val {SELECTION_METRIC} {record[key]:6.2f}")
        parts.append(
            f"best {self.progress.best_metric:6.2f} (epoch {self.progress.best_epoch})"
            if self.progress.best_epoch
            else "best  –"
        )
        return "  ".join(parts)

    def rank_with_best(self) -> tuple[dict[str, torch.Tensor], dict[str, Allocation]]:
        """Load best.pt; rank every validation and test target and, for AdaSplit,
        allocate each history greedily; save the ranks and each user's groups
        (``user_ranks.npz``, what paired comparisons between runs read). Returns the
        ranks and the greedy allocation per split (none for a baseline), which every
        allocation measure of the final report reads."""
        best = read_checkpoint(self.run_dir / "best.pt", self.device)
        self.agent.load_state_dict(best["agent_state"])
        ranks = {
            split: self.evaluate_ranks(split, progress=self.config.progress)
            for split in ("val", "test")
        }
        greedy = {}
        if self.recommender.allocates:
            greedy = {split: allocate_split(self.process, self.dataset, split) for split in ranks}
        groups = {split: allocation.filled_groups for split, allocation in greedy.items()}
        write_user_ranks(self.run_dir / USER_RANKS_FILE, ranks, groups=groups)
        return ranks, greedy

    def final_report(self) -> dict:
        """Best weights, every user: validation and test metrics -> metrics.json."""
        start = time.perf_counter()
        ranks, greedy_by_split = self.rank_with_best()
        results = split_metrics(ranks)
        epochs = self.progress.epoch
        results.update(
            seconds_per_epoch=self.progress.train_seconds / max(epochs, 1),
            train_samples_per_second=self.progress.samples_seen
            / max(self.progress.train_seconds, 1e-9),
            epochs=epochs,
            best_epoch=self.progress.best_epoch,
            device=str(self.device),
            torch_threads=torch.get_num_threads(),
            world_size=self.world_size,
            machine=machine_description(self.device),
            train_seconds=self.progress.train_seconds,
            validation_seconds=self.progress.eval_seconds,
            history=self.progress.history,
        )
        if self.recommender.allocates:
            # the greedy pass of the test ranking: groups, coherence and (planted data) ARI
            results.update(
                allocation_summary(
                    self.process, self.dataset, greedy_by_split["test"], "test", self.config.seed
                )
            )
        # Wall time of the whole run: training, per-epoch validation, this report.
        results["final_eval_seconds"] = time.perf_counter() - start
        results["total_seconds"] = (
            self.progress.train_seconds + self.progress.eval_seconds + results["final_eval_seconds"]
        )
        atomic_write_json(self.run_dir / "metrics.json", results)
        return results


def train(config: TrainConfig, resume_dir: str | os.PathLike | None = None) -> tuple[Path, dict]:
    trainer = Trainer(config, run_dir=resume_dir)
    results = trainer.fit(resume=resume_dir is not None)
    return trainer.run_dir, results


__all__ = ["Trainer", "format_metrics_table", "train"]
