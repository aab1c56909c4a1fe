"""k3py's pod scheduler: kube-scheduler's default profile without preemption.

``resources`` (what pods request, what nodes have left), ``plugins`` (filters, scores and the
``FailedScheduling`` message), ``cycle`` (one placement decision), ``queue`` (active, backoff
and unschedulable pods) and ``run`` (informers, the loop, binding and events).
"""

from k3py.scheduler.run import Scheduler

__all__ = ["Scheduler"]
