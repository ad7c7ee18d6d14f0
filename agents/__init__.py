"""Learners for the AdaSplit allocation MDP."""
