"""Each recipe of docs/rl-libraries.md trains a few hundred steps with its library.

The recipes are the files under examples/rl_libraries/ that the doc quotes; a
test skips only where its library is not installed (``pip install -e '.[rl]'``).
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

RECIPES = REPO / "examples" / "rl_libraries"


def recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["maskable_ppo", "ppo", "dqn"])
def test_sb3_recipe_trains(algo):
    sb3 = recipe("sb3")
    model = sb3.make_model(algo, seed=0, dim=16)
    model.learn(total_timesteps=300)
    assert model.num_timesteps >= 300


@pytest.mark.slow
@pytest.mark.parametrize("network", ["mlp", "affinity"])
def test_cleanrl_recipe_trains(network):
    cleanrl = recipe("cleanrl_ppo")
    _, returns = cleanrl.train(
        steps=1024, seed=0, network=network, num_envs=8, num_steps=32, dim=16
    )
    assert len(returns) == 4 and np.all(np.isfinite(returns))


@pytest.mark.slow
def test_torchrl_recipe_trains():
    pytest.importorskip("torchrl")
    torchrl_ppo = recipe("torchrl_ppo")
    _, rewards = torchrl_ppo.train(steps=512, seed=0, dim=16)
    assert len(rewards) == 2 and np.all(np.isfinite(rewards))


def test_torchrl_env_specs_check_without_glue():
    pytest.importorskip("torchrl")
    from torchrl.envs.utils import check_env_specs

    env = recipe("torchrl_ppo").make_env(dim=16)
    check_env_specs(env)
    rollout = env.rollout(30)  # random actions drawn from the masked spec
    actions, masks = rollout["action"], rollout["action_mask"]
    assert bool(masks.gather(-1, actions[:, None]).all())


@pytest.mark.slow
def test_skrl_recipe_trains(tmp_path):
    pytest.importorskip("skrl")
    skrl_ppo = recipe("skrl_ppo")
    agent = skrl_ppo.train(steps=512, seed=0, num_envs=8, directory=str(tmp_path), dim=16)
    assert agent.memory is not None and any(tmp_path.iterdir())


@pytest.mark.slow
def test_tianshou_recipe_trains():
    pytest.importorskip("tianshou")
    tianshou_dqn = recipe("tianshou_dqn")
    _, stats = tianshou_dqn.train(steps=500, seed=0, num_envs=2, dim=16)
    assert np.isfinite(stats.best_reward)


@pytest.mark.slow
def test_rl_zoo_trains_and_enjoys_with_the_shipped_hyperparameters(tmp_path):
    pytest.importorskip("rl_zoo3")
    pytest.importorskip("requests")
    common = ["--algo", "ppo", "--env", "AdaSplit/Allocation-v0", "--gym-packages", "adasplit_env"]
    conf = str(REPO / "adasplit_env" / "rl_zoo" / "ppo.yml")
    train = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.train", *common, "--conf-file", conf, "-n", "1024",
         "--eval-freq", "-1", "-f", "logs", "--seed", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    assert (
        tmp_path / "logs" / "ppo" / "AdaSplit-Allocation-v0_1" / "AdaSplit-Allocation-v0.zip"
    ).is_file()
    enjoy = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.enjoy", *common, "-f", "logs", "-n", "25", "--exp-id", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert enjoy.returncode == 0, enjoy.stderr[-2000:]
    assert "group(s)" in enjoy.stdout  # the human render mode printed the allocation
