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
ffibuilder.cdef(
    """
    #define PF_SHA256 ...
    #define PF_MD5 ...
    #define PF_ELIMIT ...
    #define PF_ENOMEM ...
    #define PF_ECRYPTO ...

    typedef struct pf_hasher pf_hasher;

    pf_hasher *pf_hasher_new(int algo);
    pf_hasher *pf_hasher_copy(const pf_hasher *src);
    void pf_hasher_free(pf_hasher *h);
    int pf_hasher_update(pf_hasher *h, const unsigned char *buf, size_t len);
    int pf_hasher_digest(const pf_hasher *h, unsigned char *out, unsigned int *outlen);
    int pf_hasher_size(const pf_hasher *h);

    int pf_copy_and_hash(int src_fd, int dst_fd, uint64_t limit,
                         unsigned char *digest, uint64_t *size_out,
                         unsigned char *head, size_t head_cap, size_t *head_len);
    """
)
ffibuilder.set_source(
    "pastefile.ext._hashing",
    '#include "hashing.h"',
    sources=[os.path.join(SRC, "hashing.c")],
    include_dirs=[SRC],
    libraries=["crypto"],
    extra_compile_args=["-O2", "-std=c99", "-Wall"],
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
