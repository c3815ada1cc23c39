"""ptm-bench: the library behind the model-zoo benchmark workflow (see README.md)."""

__version__ = "0.1.0"
