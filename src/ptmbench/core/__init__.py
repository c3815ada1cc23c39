"""Core: the task registry, names of PTMs and pairs, the config, the path layout and the job list (no heavy imports)."""
