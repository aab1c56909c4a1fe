"""The conformance harness: ephemeral clusters, suite runners and result reports.

Imported by ``tasks.py`` and the conformance tests; not installed.
"""
