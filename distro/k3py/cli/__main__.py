"""``python -m k3py.cli``: the same as the ``k3py`` console script."""

from k3py.cli.main import main

main()
