"""The ``k3py server`` flow: datastore → HTTP listener → (API server, controllers, scheduler).

``run_server(config)`` blocks until SIGINT/SIGTERM; ``serve`` is the same flow as a
coroutine for callers that own the loop (tests, the embedded agent later).
"""

from k3py.server.errors import ServerError
from k3py.server.run import run_server, serve

__all__ = ["ServerError", "run_server", "serve"]
