"""adasplit-gym: the AdaSplit behaviour-allocation MDP as a Gymnasium environment."""

__version__ = "0.1.0"
