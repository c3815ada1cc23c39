"""Command lines: every `python -m ptmbench.cli.<name>` (naming, plan, status, grouping)."""
