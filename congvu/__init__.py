"""Congvu: official mail and calendar server for a city administration."""

__version__ = "0.1.0"
