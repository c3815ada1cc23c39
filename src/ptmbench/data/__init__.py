"""Data: task schemas and validation, the offline demo datasets and the tiny models."""
