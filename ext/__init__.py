"""Compiled hot paths of pastefile.  Knows nothing of ``pastefile.core``.

Import the validating wrappers (``pastefile.ext.hashing``,
``pastefile.ext.geometry``), not the raw ``_hashing``/``_geometry`` modules.
"""
