"""adasplit-gym: the AdaSplit behaviour-allocation MDP as a Gymnasium environment.

Importing the package registers two env ids::

    import gymnasium as gym
    import adasplit_env
    env = gym.make("AdaSplit/Allocation-v0", dataset="synthetic")  # the paper's MDP
    env = gym.make("AdaSplit/PlantedAllocation-v0")  # a trained recommender: learning pays

``gymnasium.make_vec(id, n)`` builds the native vector env of either.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

ENV_ID = "AdaSplit/Allocation-v0"
PLANTED_ENV_ID = "AdaSplit/PlantedAllocation-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="adasplit_env.envs.allocation_env:AllocationEnv",
        vector_entry_point="adasplit_env.envs.vector_env:AllocationVectorEnv",
    )
if PLANTED_ENV_ID not in registry:
    register(
        id=PLANTED_ENV_ID,
        entry_point="adasplit_env.envs.planted:make_planted_env",
        vector_entry_point="adasplit_env.envs.planted:make_planted_vector_env",
    )
