"""nncli: train, evaluate and apply multi-layer perceptrons on tabular CSV data.

This module stays light: `nncli --version` and `--help` import only it and the CLI.
"""

__version__ = "0.1.0"
