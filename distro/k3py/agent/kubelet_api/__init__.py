"""The kubelet's HTTPS API (port 10250): logs, exec, attach, port-forward, pods, stats.

The API server reaches a node's kubelet here for ``kubectl logs``, ``exec``, ``attach``,
``port-forward`` and ``cp`` (``k3py.apiserver.kubelet_proxy``). ``backend`` says what the
kubelet core provides (:class:`KubeletBackend`: its pods, where a container's logs are,
the container runtime); ``server`` is the aiohttp application (:class:`KubeletApi`);
``auth`` authenticates callers (client certificates of the cluster's client CA, bearer
tokens through a ``TokenReview``) and authorizes them as upstream's kubelet does, as
``nodes/<subresource>`` (:func:`api_authorizer`: a ``SubjectAccessReview``).
"""

from k3py.agent.kubelet_api.auth import (
    ApiAuthorizer,
    Authorizer,
    KubeletAttributes,
    KubeletUser,
    TokenReviewer,
    api_authorizer,
    request_attributes,
)
from k3py.agent.kubelet_api.backend import ContainerLocation, KubeletBackend, StreamingRuntime
from k3py.agent.kubelet_api.server import KubeletApi

__all__ = [
    "ApiAuthorizer",
    "Authorizer",
    "ContainerLocation",
    "KubeletApi",
    "KubeletAttributes",
    "KubeletBackend",
    "KubeletUser",
    "StreamingRuntime",
    "TokenReviewer",
    "api_authorizer",
    "request_attributes",
]
