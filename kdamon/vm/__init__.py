"""The QEMU guest runner: boot a DAMON kernel and run commands in it."""

from kdamon.vm.kernels import Kernel, cache_dir, list_recipes
from kdamon.vm.qemu import GuestResult, kernel_failures
from kdamon.vm.resolve import resolve_kernel
from kdamon.vm.runner import DEFAULT_KERNEL, run

__all__ = [
    "DEFAULT_KERNEL",
    "GuestResult",
    "Kernel",
    "cache_dir",
    "kernel_failures",
    "list_recipes",
    "resolve_kernel",
    "run",
]
