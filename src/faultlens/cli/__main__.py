"""`python -m faultlens.cli`: the same entry point as the `faultlens` script."""

from faultlens.cli import main

main()
