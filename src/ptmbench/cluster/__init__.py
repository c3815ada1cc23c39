"""Cluster: planning a run (jobs, GPU-hours, disk), where a run stands, and Slurm job grouping."""
