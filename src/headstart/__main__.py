"""``python -m headstart`` (and ``torchrun ... -m headstart train ...``): the command line."""

from headstart.cli import main

main()
