"""Real data sets that ship inside installed packages, usable with no download."""

from headstart.data.demo import DEMO_NAMES, digits, lfw

__all__ = ["DEMO_NAMES", "digits", "lfw"]
