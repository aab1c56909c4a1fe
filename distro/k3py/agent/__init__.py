"""The node agent: kubelet, containerd supervision, network, service proxy, cluster DNS.

Only its entry point exists so far (``run``): ``k3py agent`` validates its settings and
then reports that joining a server is not implemented yet.
"""
