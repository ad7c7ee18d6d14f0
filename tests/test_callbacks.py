"""The loop's parts: callbacks around the epochs, the narrow context an agent runs in,
and a batch's data-parallel share, each without (or beside) a whole Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adasplit_env.data import SyntheticConfig, load_dataset
from adasplit_env.model.adasplit import AdaSplitModel
from adasplit_env.model.config import ModelConfig
from adasplit_env.process import AllocationProcess
from agents.base import shard_batch
from agents.callbacks import Callback
from agents.config import TrainConfig
from agents.reinforce import ReinforceAgent
from agents.trainer import Trainer

SMALL = SyntheticConfig(num_users=80, num_groups=4, items_per_group=8, max_length=10, seed=2)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic", synthetic=SMALL)


def test_a_batch_is_shared_by_rank_and_whole_with_one_process(dataset):
    batch = dataset.split.train_samples(6).subset(slice(0, 7))
    assert shard_batch(batch, 0, 1) is batch
    share = shard_batch(batch, 1, 3)
    assert torch.equal(share.targets, batch.targets[[1, 4]])
    shares = [shard_batch(batch, rank, 3) for rank in range(3)]
    assert sum(len(s) for s in shares) == len(batch)


class _Context:
    """The least a learner's epoch needs (agents.base.TrainingContext), no Trainer."""

    def __init__(self, agent, samples, run_dir: Path):
        self.config, self.dataset, self.train_samples = agent.config, None, samples
        self.device, self.run_dir = torch.device("cpu"), run_dir
        self.sampling = torch.Generator().manual_seed(0)
        self.loss_module = agent
        self.optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
        self.updates = []

    def epoch_batches(self, epoch):
        return list(self.train_samples.batches(32, shuffle=False))

    def shard(self, batch):
        return batch

    def progress_bar(self, iterable, epoch, total=None):
        class _Bar(list):
            def set_postfix(self, *_):
                pass

        return _Bar(iterable)

    def log_due(self):
        return True

    def optimize(self, loss, stats):
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates.append(stats["losses/total"])

    def bar_postfix(self):
        return {}


def test_an_agent_runs_an_epoch_in_the_narrow_context_alone(dataset, tmp_path):
    config = TrainConfig(dim=8, max_len=6, batch_size=32)
    model = AdaSplitModel(
        ModelConfig(num_users=dataset.num_users, num_items=dataset.num_items, dim=8, max_len=6)
    )
    agent = ReinforceAgent(AllocationProcess(model, config.reward), config)
    samples = dataset.split.train_samples(6)
    context = _Context(agent, samples, tmp_path)
    before = model.item_embeddings.weight.detach().clone()
    agent.run_epoch(context, 1)
    assert len(context.updates) == len(context.epoch_batches(1))
    assert not torch.equal(model.item_embeddings.weight, before)


class _Recorder(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_end(self, trainer, record):
        # after validation (built in, first): the record holds its metrics
        self.seen.append((record["epoch"], "val/NDCG@10" in record))
        record["custom/epoch_squared"] = record["epoch"] ** 2


@pytest.mark.slow
def test_a_callback_sees_every_epoch_after_validation_and_adds_to_the_history(dataset, tmp_path):
    config = TrainConfig(
        dim=8, max_len=6, batch_size=64, epochs=3, eval_every=2, eval_users=20, progress=False,
        threads=1, run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    recorder = _Recorder()
    Trainer(config, dataset=dataset, callbacks=[recorder]).fit()
    # validated at epoch 2 and at the last epoch
    assert recorder.seen == [(1, False), (2, True), (3, True)]
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert [h["custom/epoch_squared"] for h in history] == [1, 4, 9]
    # TensorBoard, a callback too, runs after the user's and logs what it added
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.value for e in events.Scalars("custom/epoch_squared")] == [1, 4, 9]
    assert (
        len(events.Scalars("val/NDCG@10")) == 2 and len(events.Scalars("final/test/NDCG@10")) == 1
    )


class _Failing(Callback):
    def __init__(self):
        self.ended_with = "not called"

    def on_epoch_end(self, trainer, record):
        raise KeyboardInterrupt  # as Ctrl-C after the first epoch

    def on_fit_end(self, trainer, results):
        self.ended_with = results


def test_an_interrupted_run_still_ends_every_callback(dataset, tmp_path):
    config = TrainConfig(
        dim=8, max_len=6, batch_size=64, epochs=3, eval_users=20, progress=False, threads=1,
        run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    failing = _Failing()
    trainer = Trainer(config, dataset=dataset, callbacks=[failing])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert failing.ended_with is None  # told the run ended, with no results
    assert trainer.callbacks[-1].writer is None  # TensorBoard closed its event file
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "run").iterdir())
