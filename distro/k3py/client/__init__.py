"""How components outside the API server talk to it: a REST client over HTTPS (``rest``)."""

from k3py.client.rest import ApiStatusError, Credentials, Kubeconfig, RestClient

__all__ = ["ApiStatusError", "Credentials", "Kubeconfig", "RestClient"]
