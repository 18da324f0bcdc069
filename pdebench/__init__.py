"""pdebench: a benchmarking suite for neural PDE surrogates."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pdebench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
