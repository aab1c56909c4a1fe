"""Controllers, as kube-controller-manager runs them: each follows objects through the client
(informers), queues keys, and converges the cluster one key at a time (``queue``, ``base``)."""
