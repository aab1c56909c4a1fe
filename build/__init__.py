"""The build system: target root filesystems, QEMU runners, wheelhouse, binary, API strip, release.

Imported by ``tasks.py`` and the build tests; not installed. Targets are described by the
data files in ``arch/``.
"""
