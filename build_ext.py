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
    ("pastefile.ext._resample", os.path.join("ext", "_resample.pyx")),
    ("pastefile.ext._phash", os.path.join("ext", "_phash.pyx")),
    ("pastefile.ext._hamming", os.path.join("ext", "_hamming.pyx")),
    ("pastefile.ext._metastrip", os.path.join("ext", "_metastrip.pyx")),
]

# Modules whose prange loops run on OpenMP threads (serial without OpenMP).
OPENMP_MODULES = {"pastefile.ext._resample"}

# PASTEFILE_PORTABLE=1 builds for the baseline of the target architecture
# (wheels, images copied to other machines) instead of -march=native.
PORTABLE = os.environ.get("PASTEFILE_PORTABLE", "").strip() not in ("", "0")
# PASTEFILE_NO_OPENMP=1 builds the prange loops serial.
NO_OPENMP = os.environ.get("PASTEFILE_NO_OPENMP", "").strip() not in ("", "0")


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


def _openmp_available() -> bool:
    """Whether the C compiler accepts -fopenmp and links libgomp."""
    if NO_OPENMP:
        return False
    import shutil
    import subprocess
    import sysconfig
    import tempfile

    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not shutil.which(cc[0]):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            done = subprocess.run(
                [*cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")],
                capture_output=True, timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0


def _compile_args() -> list[str]:
    # -ffp-contract=off: no fused multiply-add in the floating-point parts
    # (filter weights), so they round exactly like Pillow's baseline build.
    args = ["-O3", "-ffp-contract=off"]
    if not PORTABLE:
        args.append("-march=native")
    return args


def cython_extensions():
    from Cython.Build import cythonize
    from setuptools import Extension

    openmp = any(name in OPENMP_MODULES for name, _ in CYTHON_MODULES) and _openmp_available()
    extensions = []
    for name, path in CYTHON_MODULES:
        compile_args = _compile_args()
        link_args = []
        if openmp and name in OPENMP_MODULES:
            compile_args.append("-fopenmp")
            link_args.append("-fopenmp")
        extensions.append(
            Extension(
                name,
                [path],
                include_dirs=[SRC],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
            )
        )
    return cythonize(
        extensions,
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        include_path=[_cython_include_dir()],
        quiet=True,
    )


if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
