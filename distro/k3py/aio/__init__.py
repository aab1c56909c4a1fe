"""Domain-free asyncio kit: supervised named tasks, readiness gates, stop signals."""

from k3py.aio.gates import Gate, Gates
from k3py.aio.signals import StopRequest, stop_on_signals
from k3py.aio.supervisor import Supervisor, TaskCrashed

__all__ = [
    "Gate",
    "Gates",
    "StopRequest",
    "Supervisor",
    "TaskCrashed",
    "stop_on_signals",
]
