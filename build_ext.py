"""Builders for pastefile's compiled hot paths.

``ffibuilder`` is the CFFI out-of-line (API mode) builder, referenced from
setup.py through ``cffi_modules``; ``cython_extensions()`` lists the Cython
modules.  Both compile at install time (``pip install .`` or ``-e .``).
"""
from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join("ext", "src")

ffibuilder = FFI()


def _cdef_from_header(path: str) -> str:
    """The declarations between the header's cdef markers: one source of truth."""
    with open(os.path.join(HERE, path)) as f:
        text = f.read()
    start = text.index("/* cdef-begin")
    start = text.index("*/", start) + 2
    return text[start : text.index("/* cdef-end */")]


ffibuilder.cdef(_cdef_from_header(os.path.join(SRC, "hashing.h")))
ffibuilder.set_source(
    "pastefile.ext._hashing",
    '#include "hashing.h"',
    sources=[os.path.join(SRC, "hashing.c")],
    include_dirs=[SRC],
    libraries=["crypto"],
    extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-pthread"],
    extra_link_args=["-pthread"],
)

# Cython modules: (dotted name, .pyx path relative to the project root).
CYTHON_MODULES = [
    ("pastefile.ext._geometry", os.path.join("ext", "_geometry.pyx")),
]


def _cython_include_dir() -> str:
    """A tree where ``pastefile/ext`` resolves to ``ext/``.

    Cython looks a module's .pxd up by its qualified name
    (``pastefile/ext/_geometry.pxd``), while setup.py maps the package onto
    a differently named folder; a symlinked view bridges the two.
    """
    root = os.path.join(HERE, "build", "cython-include")
    pkg = os.path.join(root, "pastefile")
    os.makedirs(pkg, exist_ok=True)
    marker = os.path.join(pkg, "__init__.pxd")
    if not os.path.exists(marker):
        open(marker, "w").close()
    link = os.path.join(pkg, "ext")
    if not os.path.islink(link):
        os.symlink(os.path.join(HERE, "ext"), link)
    return root


def cython_extensions():
    from Cython.Build import cythonize
    from setuptools import Extension

    extensions = [
        Extension(name, [path], extra_compile_args=["-O3"])
        for name, path in CYTHON_MODULES
    ]
    return cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        include_path=[_cython_include_dir()],
        quiet=True,
    )


if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
