"""The paper's tables and figures, regenerated from run dirs.

``python -m reproduce table2|table3|table4|figure4|figure5|search|all``
runs what is missing (see :mod:`.runner`), then writes ``<results>/<target>.md``
(and the figures' PNGs) and refreshes the matching sections of REPRODUCTION.md.
"""

from reproduce.experiments import TARGETS, Experiment, experiments

__all__ = ["TARGETS", "Experiment", "experiments"]
