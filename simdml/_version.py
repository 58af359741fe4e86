"""The version of simdml: one place, read by the package, its metadata and sweep records."""

__version__ = "0.1.0"
