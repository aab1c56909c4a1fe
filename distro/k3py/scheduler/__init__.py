"""k3py's pod scheduler: kube-scheduler's default profile, preemption included.

``resources`` (what pods request, what nodes have left), ``plugins`` (per-node filters, scores
and the ``FailedScheduling`` message), ``affinity`` (InterPodAffinity), ``spread``
(PodTopologySpread), ``preemption`` (DefaultPreemption's choice of node and victims),
``cluster`` (what a cycle reads besides nodes and pods), ``cycle`` (one placement decision),
``cache`` (each node's pods, kept current from the informers), ``queue`` (active, backoff and
unschedulable pods) and ``run`` (informers, the loop, binding, evictions and events).
"""

from k3py.scheduler.run import Scheduler

__all__ = ["Scheduler"]
