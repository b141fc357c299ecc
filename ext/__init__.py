"""Compiled hot paths of pastefile.  Knows nothing of ``pastefile.core``.

Import the validating wrappers (``pastefile.ext.hashing``,
``pastefile.ext.geometry``), not the raw ``_hashing``/``_geometry`` modules.
"""
import os


def ensure_openmp_policy() -> None:
    """Ask OpenMP threads to sleep, not spin, when they wait (``OMP_WAIT_POLICY=PASSIVE``).

    Threads that finish a parallel loop first otherwise spin at its end; on a
    server whose cores are shared with other processes, that spinning takes
    the CPU from the thread still working and two threads end up slower than
    one.  Sleeping instead costs a few microseconds per loop.  An explicit
    setting in the environment wins.

    libgomp reads the variable once, when it is loaded (a library
    constructor), not at the first parallel region: it must be set before the
    first module linking OpenMP (``_resample``) is imported; later it has no
    effect.  Hence the call below, in the package itself, which Python runs
    before any of its submodules whichever is imported first.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


ensure_openmp_policy()
