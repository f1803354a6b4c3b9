"""kdamon: drive the Linux kernel's DAMON, or a pure-Python engine where it is missing."""

__version__ = "0.1.0"
