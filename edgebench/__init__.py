"""edgebench: compiled edge-deployment benchmarks for image classifiers.

Importing the package is cheap: heavy dependencies (torch, runtimes) load lazily
in the subpackages that need them.
"""

__version__ = "0.1.0"
