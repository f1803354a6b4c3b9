"""kdamon: drive the Linux kernel's DAMON, or a pure-Python engine where it is missing."""


def __getattr__(name: str) -> str:
    # The version is read from the package metadata on first use (kdamon.distribution).
    if name == "__version__":
        from kdamon.distribution import version

        return version()
    raise AttributeError(f"module 'kdamon' has no attribute {name!r}")
