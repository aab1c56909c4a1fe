"""k3py: a lightweight, conformant Kubernetes distribution in one Python process."""

__version__ = "0.1.0"
