"""Version: the one place echod's version is written."""

__version__ = "0.1.0"
