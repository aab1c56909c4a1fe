"""The API model, independent of HTTP: manifest, schemas, defaulting, validation, patch, printers.

Objects stay plain JSON-like dicts; this package holds what knows their shapes (``schema``) and
what transforms them (``patch``).
"""
