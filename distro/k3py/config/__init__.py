"""Frozen settings built once from defaults < config file < environment < flags.

``load_server_config``/``load_agent_config`` return a validated ``ServerConfig``/
``AgentConfig`` or raise ``ConfigError``; ``flags`` declares every setting.
"""

from k3py.config.build import load_agent_config, load_server_config
from k3py.config.errors import ConfigError
from k3py.config.flags import AGENT_FLAGS, SERVER_FLAGS, Flag, Kind
from k3py.config.model import (
    DEFAULT_CONFIG_FILE,
    DISABLEABLE,
    AgentConfig,
    IPAddress,
    IPNetwork,
    ServerConfig,
    SQLiteEndpoint,
)

__all__ = [
    "AGENT_FLAGS",
    "DEFAULT_CONFIG_FILE",
    "DISABLEABLE",
    "SERVER_FLAGS",
    "AgentConfig",
    "ConfigError",
    "Flag",
    "IPAddress",
    "IPNetwork",
    "Kind",
    "SQLiteEndpoint",
    "ServerConfig",
    "load_agent_config",
    "load_server_config",
]
