"""The node agent: containerd, the kubelet (pod workers, volumes, probes, its HTTPS API) and the pod network.

``run`` holds the two entry points: ``k3py agent`` (join a server, then run the node) and
``run_node``, which the server also uses for its embedded agent.
"""
