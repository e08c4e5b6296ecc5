"""The package version, in a module of its own so that anything may read it without
importing the package's heavier parts."""

__version__ = "0.2.0"
