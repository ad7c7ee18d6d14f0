"""adasplit-gym: the AdaSplit behaviour-allocation MDP as a Gymnasium environment.

Importing the package registers ``AdaSplit/Allocation-v0``::

    import gymnasium as gym
    import adasplit_env
    env = gym.make("AdaSplit/Allocation-v0", dataset="synthetic")
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

ENV_ID = "AdaSplit/Allocation-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="adasplit_env.envs.allocation_env:AllocationEnv",
        vector_entry_point="adasplit_env.envs.vector_env:AllocationVectorEnv",
    )
