"""Measures of an allocation, outside the MDP's core: how well the groups match planted
interests (adjusted Rand index, :mod:`.allocation_quality`) and whether they look like
interests or time segments (co-occurrence coherence, :mod:`.coherence`). They read the
process and the data; nothing in the environment, the model or the data reads them."""
