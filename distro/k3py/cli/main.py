"""The ``k3py`` command: dispatch on the subcommand, and turn fatal errors into exit codes.

Flow: ``main`` → parse the command line (``cli.parser``) → run the subcommand's handler,
which builds its frozen config and calls into ``server``/``agent``. Handlers return an
exit code; fatal errors propagate as named exceptions up to ``main``, which prints one
line (``k3py server: error: ...``) and exits with the code from ``cli.errors``. This is
the only place that calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from k3py import payload
from k3py.cli import check_config, killall, logs, token
from k3py.cli.errors import UsageError, exit_status
from k3py.cli.kubectl import run_kubectl
from k3py.cli.parser import SUBCOMMAND_FLAGS, build_parser, given_flags, version_line
from k3py.config import load_agent_config, load_server_config
from k3py.server import run_server

Handler = Callable[[argparse.Namespace], int]
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``k3py`` console script."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv: Sequence[str]) -> int:
    """Run one ``k3py`` invocation and return its exit code (fatal errors included)."""
    args = list(argv)
    prog = f"k3py {args[0]}" if args and args[0] in HANDLERS else "k3py"
    try:
        if args[:1] == ["kubectl"]:
            # Everything after "kubectl" belongs to kubectl, including --help and -n.
            run_kubectl(args[1:])
        namespace = build_parser().parse_args(args)
        return HANDLERS[namespace.command](namespace)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        status = exit_status(error)
        if status is None:
            raise
        hint = f" (see '{prog} --help')" if isinstance(error, UsageError) else ""
        print(f"{prog}: error: {status.message}{hint}", file=sys.stderr)
        return status.code


def _server(args: argparse.Namespace) -> int:
    config = load_server_config(given_flags(args, SUBCOMMAND_FLAGS["server"]))
    logs.configure(debug=config.debug)
    run_server(config)
    return 0


def _agent(args: argparse.Namespace) -> int:
    from k3py.agent.run import run_agent  # the node's modules load only for a node

    config = load_agent_config(given_flags(args, SUBCOMMAND_FLAGS["agent"]))
    logs.configure(debug=config.debug)
    run_agent(config)
    return 0


def _token(args: argparse.Namespace) -> int:
    return token.run(args)


def _killall(args: argparse.Namespace) -> int:
    return killall.run(args)


def _version(args: argparse.Namespace) -> int:
    print(version_line())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    path: str | None = args.path if args.path is not None else os.environ.get("PATH")
    located = payload.own_payload()
    host = check_config.Host(path=path, payload=located.sha256 if located is not None else None)
    findings = check_config.check_host(host)
    return check_config.report(findings, sys.stdout)


def _kubectl(args: argparse.Namespace) -> int:  # only for argv like "k3py -- kubectl ..."
    run_kubectl(args.args)


HANDLERS: dict[str, Handler] = {
    "server": _server,
    "agent": _agent,
    "kubectl": _kubectl,
    "check-config": _check_config,
    "token": _token,
    "killall": _killall,
    "version": _version,
}
