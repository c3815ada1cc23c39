"""Core: the task registry, names of PTMs and pairs, hyper-parameters, the path layout and the job list (no heavy imports)."""
