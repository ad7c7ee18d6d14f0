"""What outside RL libraries need from the env: render modes, observation layouts
(mask in the observation, flat), make_vec reaching the native vector env and its
same-step autoreset, and the planted env id where learning pays."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import adasplit_env
from adasplit_env.data import load_dataset
from adasplit_env.envs import AllocationEnv, AllocationVectorEnv
from adasplit_env.envs.allocation_env import PALETTE
from adasplit_env.envs.reference_policies import POLICIES, score
from adasplit_env.envs.sb3_vec_env import AllocationSB3VecEnv
from adasplit_env.errors import ConfigError

LAYOUTS = [
    {},
    {"mask_in_observation": True},
    {"flat_observation": True},
    {"flat_observation": True, "mask_in_observation": True},
]


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_passes_the_checkers(synthetic, layout):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = AllocationEnv(synthetic, dim=8, render_mode="rgb_array", **layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite Box bounds are reported, not errors
        check_env(env, skip_render_check=False)
        sb3_check_env(env)


def test_layouts_show_the_same_state(synthetic):
    """Same seed and actions: the flat vector is gymnasium's flatten of the Dict, and the
    mask in the observation is info's mask as bool."""
    envs = [AllocationEnv(synthetic, dim=8, **layout) for layout in LAYOUTS]
    dict_env, masked, flat, flat_masked = envs
    observations = [env.reset(seed=4)[0] for env in envs]
    terminated = False
    while not terminated:
        plain, with_mask, flat_obs, flat_with_mask = observations
        info_mask = dict_env._info(None)["action_mask"]
        expected = spaces.flatten(dict_env.observation_space, plain)
        np.testing.assert_array_equal(flat_obs, expected)
        np.testing.assert_array_equal(flat_with_mask["observation"], expected)
        for masked_obs in (with_mask, flat_with_mask):
            assert masked_obs["action_mask"].dtype == np.bool_
            np.testing.assert_array_equal(masked_obs["action_mask"], info_mask.astype(bool))
        for key in plain:
            np.testing.assert_array_equal(with_mask[key], plain[key])
        for env, obs in zip(envs, observations):
            assert env.observation_space.contains(obs)
        action = int(np.flatnonzero(info_mask)[-1])  # create while possible
        steps = [env.step(action) for env in envs]
        observations = [step[0] for step in steps]
        terminated = steps[0][2]


def test_render_modes(synthetic, capsys):
    env = AllocationEnv(synthetic, dim=8, render_mode="rgb_array")
    env.reset(seed=3)
    env.step(0)
    env.step(1)
    image = env.render()
    positions = env.process.model.config.max_len + 1
    assert image.dtype == np.uint8 and image.shape == (2 * 12, positions * 12, 3)
    colours = {tuple(image[6, 12 * p + 6]) for p in range(positions)}
    # groups 0 and 1 were used, and the planted row has its own colours
    assert tuple(PALETTE[0]) in colours and tuple(PALETTE[1]) in colours
    human = AllocationEnv(synthetic, dim=8, render_mode="human")
    human.reset(seed=3)
    human.step(0)
    printed = capsys.readouterr().out
    assert printed.count("group(s)") == 2 and "group 0" in printed
    assert human.render() is None
    with pytest.raises(ValueError, match="unknown render_mode 'pixels'"):
        AllocationEnv(synthetic, dim=8, render_mode="pixels")


def test_sb3_make_vec_env_and_rl_zoo_render_modes_work():
    """SB3's make_vec_env passes render_mode='rgb_array'; rl-zoo3's enjoy passes 'human'."""
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(adasplit_env.ENV_ID, n_envs=2, env_kwargs={"dim": 8})
    assert vec.reset().keys() >= {"groups", "item"}
    frames = vec.get_images()
    assert all(frame.ndim == 3 for frame in frames)
    gym.make(adasplit_env.ENV_ID, dim=8, render_mode="human").close()


def test_make_vec_builds_the_native_vector_env_with_its_options():
    vector = gym.make_vec(adasplit_env.ENV_ID, 4, dim=8, flat_observation=True)
    assert isinstance(vector, AllocationVectorEnv)
    assert vector.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = vector.reset(seed=0)
    assert obs.shape == (4, vector.single_observation_space.shape[0])
    same_step = gym.make_vec(adasplit_env.ENV_ID, 4, dim=8, autoreset_mode="same-step")
    assert same_step.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    with pytest.raises(ConfigError, match="autoreset_mode 'Disabled' is not supported"):
        gym.make_vec(adasplit_env.ENV_ID, 2, dim=8, autoreset_mode=AutoresetMode.DISABLED)


def test_same_step_autoreset_is_next_step_without_the_dead_steps(synthetic):
    """The same actions give the same episodes in both modes: same-step returns the
    next episode's first observation at once (the last one in final_obs), next-step
    a step later, after a dead step that ignores its action and pays 0."""
    kwargs = dict(dataset=synthetic, dim=8, mask_in_observation=True)
    next_step = AllocationVectorEnv(1, autoreset_mode="next-step", **kwargs)
    same_step = AllocationVectorEnv(1, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    obs_next, _ = next_step.reset(seed=2)
    obs_same, _ = same_step.reset(seed=2)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(50):
        action = np.array([rng.integers(0, 2)])
        obs_same, r_same, t_same, _, info_same = same_step.step(action)
        obs_next, r_next, t_next, _, info_next = next_step.step(action)
        np.testing.assert_allclose(r_same, r_next, rtol=1e-6)
        assert t_same[0] == t_next[0]
        if t_same[0]:
            finished += 1
            np.testing.assert_array_equal(
                info_same["final_obs"][0]["groups"], obs_next["groups"][0]
            )
            assert info_same["_final_info"][0] and not info_same["_num_groups"][0]
            assert info_same["final_info"]["num_groups"][0] == info_next["num_groups"][0]
            obs_next, r_dead, t_dead, _, _ = next_step.step(np.array([5]))  # the dead step
            assert r_dead[0] == 0.0 and not t_dead[0]
        else:
            assert "final_obs" not in info_same
        for key in obs_same:
            np.testing.assert_array_equal(obs_same[key], obs_next[key])
    assert finished >= 3


def test_sb3_vec_env_keeps_the_layout(synthetic):
    vector = AllocationVectorEnv(2, synthetic, dim=8, flat_observation=True)
    sb3 = AllocationSB3VecEnv.from_vector_env(vector, seed=0)
    obs = sb3.reset()
    assert obs.shape == (2, vector.single_observation_space.shape[0])
    for _ in range(30):
        obs, _, dones, infos = sb3.step(np.zeros(2, dtype=np.int64))
        for row in np.flatnonzero(dones):
            assert infos[row]["terminal_observation"].shape == obs[row].shape


@pytest.mark.slow
def test_planted_env_learning_pays():
    """On the planted env the jointly learned allocator and the planted oracle beat
    every trivial policy, on the same episodes, by several standard errors."""
    env = gym.make_vec(adasplit_env.PLANTED_ENV_ID, 128)
    assert env.parts.dataset.name == "synthetic"
    assert env.process.rewards.likelihood_reward == 1.0
    results = {result.policy: result for result in score(env, list(POLICIES), 1024)}
    trivial = max(
        results[name].mean_return for name in ("join_first", "always_create", "uniform_random")
    )
    for learned in ("model_argmax", "planted_oracle"):
        gap = results[learned].mean_return - trivial
        assert gap > 5 * results[learned].stderr, (learned, results)
    assert results["join_first"].groups_per_user == 1.0
    single = gym.make(adasplit_env.PLANTED_ENV_ID)
    obs, info = single.reset(seed=0)
    assert single.observation_space.contains(obs)
