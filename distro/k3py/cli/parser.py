"""The ``k3py`` argument parser, built from the flag table in ``k3py.config.flags``.

Options are declared once (in config) and turned into argparse options here. Every
option defaults to "not given" (``argparse.SUPPRESS``), so :func:`given_flags` returns only
what the user typed; config then layers it over the file, the environment and the
defaults. Parse errors raise ``UsageError`` (one line, exit 2) instead of printing usage.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Sequence
from typing import NoReturn

from k3py import __version__
from k3py.cli import killall, token
from k3py.cli.errors import UsageError
from k3py.config import AGENT_FLAGS, SERVER_FLAGS, Flag, Kind
from k3py.util.arch import kube_platform

SUBCOMMAND_FLAGS: dict[str, tuple[Flag, ...]] = {"server": SERVER_FLAGS, "agent": AGENT_FLAGS}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def version_line() -> str:
    return f"k3py version v{__version__} (python {platform.python_version()}, {kube_platform()})"


def build_parser() -> Parser:
    parser = Parser(
        prog="k3py",
        description="k3py: a lightweight Kubernetes distribution in one Python process.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action="version", version=version_line(), help="Print the version and exit."
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser, help="What to run."
    )

    server = commands.add_parser(
        "server",
        help="Run the control plane.",
        description="Run the k3py control plane: the datastore and the Kubernetes API server over "
        "HTTPS, with its built-in controllers. Settings for components that do not exist yet (the "
        "embedded agent, networking) are validated but have no effect.",
        allow_abbrev=False,
        argument_default=argparse.SUPPRESS,
    )
    add_flags(server, SERVER_FLAGS)

    agent = commands.add_parser(
        "agent",
        help="Run a node agent that joins a server (not implemented yet).",
        description="Join a k3py server as a worker node. "
        "Not implemented yet: exits 1 after checking its settings.",
        allow_abbrev=False,
        argument_default=argparse.SUPPRESS,
    )
    add_flags(agent, AGENT_FLAGS)

    commands.add_parser(
        "kubectl",
        help="Run kubectl against this server (arguments are passed through).",
        description="Run the kubectl found on PATH with KUBECONFIG set to the server's admin kubeconfig "
        "(--write-kubeconfig) unless KUBECONFIG is already set. All arguments go to kubectl.",
        add_help=False,
    ).add_argument("args", nargs=argparse.REMAINDER, help="Arguments for kubectl.")

    check = commands.add_parser(
        "check-config",
        help="Check that this host can run k3py (cgroups, overlay, containerd, runc, CNI).",
        description="Report whether this host has what k3py needs. Exits 1 if anything required is missing.",
        allow_abbrev=False,
    )
    check.add_argument(
        "--path",
        metavar="DIRS",
        help="Search these directories (colon-separated) for programs instead of $PATH.",
    )

    token.add_parser(commands)
    killall.add_parser(commands)

    commands.add_parser(
        "version",
        help="Print the version and exit.",
        description="Print k3py's version and the Python it runs on.",
        allow_abbrev=False,
    )
    return parser


def add_flags(parser: argparse.ArgumentParser, flags: Sequence[Flag]) -> None:
    for flag in flags:
        if flag.kind is Kind.SWITCH:
            parser.add_argument(
                *flag.option_strings, dest=flag.dest, action="store_true", help=flag.full_help
            )
        else:
            parser.add_argument(
                *flag.option_strings,
                dest=flag.dest,
                action="append" if flag.kind is Kind.LIST else "store",
                metavar=flag.metavar or flag.name.split("-")[-1].upper(),
                help=flag.full_help,
            )


def given_flags(args: argparse.Namespace, flags: Sequence[Flag]) -> dict[str, object]:
    """The flags present on the command line, keyed by flag name."""
    return {flag.name: getattr(args, flag.dest) for flag in flags if hasattr(args, flag.dest)}
