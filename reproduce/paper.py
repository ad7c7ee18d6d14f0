"""The paper's published numbers (arXiv 2112.02812), percent, as printed.

Metric order everywhere: NDCG@5, MRR@5, NDCG@10, MRR@10. Figures 4 and 5 are
plots whose values the text does not give, so they have no entry here.
"""

from __future__ import annotations

METRICS = ("NDCG@5", "MRR@5", "NDCG@10", "MRR@10")

# Table 2 (only the models this project runs; the paper has more baselines).
TABLE2: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "lastfm": {
        "adasplit": (7.88, 7.05, 8.72, 7.39),
        "sasrec": (7.37, 6.42, 8.61, 6.91),
        "gru4rec": (5.74, 5.01, 7.12, 5.59),
    },
    "garden": {
        "adasplit": (6.43, 5.54, 7.59, 6.00),
        "sasrec": (5.33, 4.30, 7.34, 5.12),
        "gru4rec": (4.62, 3.88, 5.89, 4.39),
    },
    "baby": {
        "adasplit": (2.00, 1.73, 2.44, 1.90),
        "sasrec": (1.68, 1.32, 2.21, 1.54),
        "gru4rec": (1.68, 1.38, 2.18, 1.58),
    },
    "beauty": {
        "adasplit": (4.23, 3.74, 4.85, 3.99),
        "sasrec": (3.63, 2.92, 4.54, 3.29),
        "gru4rec": (3.02, 2.59, 3.86, 2.86),
    },
}

# Tables 3 and 4: their first row is Table 2's AdaSplit, not repeated here.
TABLE3 = {
    "garden": {
        "attn_gru": TABLE2["garden"]["adasplit"],
        "lstm": (6.14, 5.26, 7.54, 5.83),
        "mean": (4.47, 3.41, 6.63, 4.28),
    },
    "baby": {
        "attn_gru": TABLE2["baby"]["adasplit"],
        "lstm": (1.59, 1.31, 2.09, 1.52),
        "mean": (1.56, 1.23, 2.05, 1.42),
    },
}

# Table 4: creation-penalty curriculum ("5,87" in the paper's Garden/None cell read as 5.87).
TABLE4 = {
    "garden": {
        "exponential": TABLE2["garden"]["adasplit"],
        "linear": (6.11, 5.26, 7.26, 5.73),
        "keep": (5.99, 5.08, 6.88, 5.43),
        "none": (4.32, 3.86, 5.87, 4.63),
    },
    "baby": {
        "exponential": TABLE2["baby"]["adasplit"],
        "linear": (1.81, 1.54, 2.26, 1.72),
        "keep": (1.67, 1.34, 1.99, 1.46),
        "none": (1.25, 1.08, 1.65, 1.15),
    },
}
