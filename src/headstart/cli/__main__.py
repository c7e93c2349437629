"""``python -m headstart.cli``: the command line."""

from headstart.cli import main

main()
