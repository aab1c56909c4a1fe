"""The configuration error: one per bad setting, naming the flag, the source and the fix.

``ConfigError`` is raised by ``config.build`` for unknown keys and bad values; the CLI turns
it into a one-line message and exit code 2 (a usage error), in one place.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is unknown, missing or invalid.

    ``flag`` is the flag name without dashes (also the config file key), when one is to
    blame; ``source`` says where the value came from (``command line``, ``environment
    variable K3PY_TOKEN``, ``config file /etc/k3py/config.yaml``).
    """

    def __init__(self, problem: str, *, flag: str | None = None, source: str | None = None) -> None:
        self.problem = problem
        self.flag = flag
        self.source = source
        super().__init__(self._format())

    def _format(self) -> str:
        message = f"--{self.flag}: {self.problem}" if self.flag else self.problem
        if self.source and self.source != COMMAND_LINE:
            message = f"{message} (from {self.source})"
        return message


COMMAND_LINE = "command line"
