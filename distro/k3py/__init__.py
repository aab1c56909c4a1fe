"""k3py: a lightweight, conformant Kubernetes distribution in one Python process."""

__version__ = "0.1.0"

KUBERNETES_VERSION = "1.37.0"
"""The Kubernetes release whose API and behaviour k3py implements."""
