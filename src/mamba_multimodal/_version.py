"""The package's version, at the bottom of the import graph: the sharing layer stamps it into what it writes."""

__version__ = "0.1.0"
