"""Domain-free helpers, one module per concern (``proc`` runs other programs)."""
