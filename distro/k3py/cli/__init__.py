"""The ``k3py`` command line: server, agent, kubectl, check-config, version.

``k3py.cli.main:main`` is the console-script entry point; ``python -m k3py.cli`` runs it too.
"""
