"""The API server's connection to kubelets: pods/log, exec, attach, portforward, proxy, nodes/proxy.

``routes`` finds the pod's node and its kubelet endpoint and forwards the request there
(:class:`~k3py.apiserver.kubelet_proxy.routes.KubeletProxy`); ``upgrade`` splices an
upgraded connection (SPDY or WebSocket) between a client and a backend, and is shared with
the kubelet, which splices the same way to the container runtime's streaming server;
``translate`` turns kubectl's WebSocket exec, attach and port-forward into the SPDY that
kubelets and container runtimes speak.
"""
