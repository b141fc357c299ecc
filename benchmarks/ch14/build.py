"""Compile the chapter 14 kernels with Cython and setuptools, and load them.

    python -m benchmarks.ch14.build [DIR]     build into DIR (default: a temporary one)

``build(directory)`` copies ``hamming_scan.py`` byte for byte to
``ch14_hamming_scan_compiled.py`` (a new name so the extension does not
shadow the pure module), copies ``hamming_scan_typed.pyx``, cythonizes both
and compiles them with setuptools' build_ext into ``directory/lib``.  Any
Cython or compiler error is raised.  ``kernels()`` does that once per
process in a temporary directory removed at exit.

The C flags follow the package's own extensions (build_ext.py):
``-O2 -march=native``, or without ``-march=native`` when PASTEFILE_PORTABLE
is set.
"""
from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from . import hamming_scan

HERE = Path(__file__).resolve().parent
PURE_SOURCE = HERE / "hamming_scan.py"
TYPED_SOURCE = HERE / "hamming_scan_typed.pyx"
COMPILED_NAME = "ch14_hamming_scan_compiled"
TYPED_NAME = "ch14_hamming_scan_typed"


class Kernels(NamedTuple):
    python: ModuleType  # hamming_scan.py as CPython runs it
    compiled: ModuleType  # the same file compiled by Cython
    typed: ModuleType  # hamming_scan_typed.pyx


def _compile_args() -> list[str]:
    portable = os.environ.get("PASTEFILE_PORTABLE", "").strip() not in ("", "0")
    return ["-O2"] if portable else ["-O2", "-march=native"]


def _load(name: str, directory: Path) -> ModuleType:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = directory / (name + suffix)
        if path.exists():
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError(f"{name}: no extension module in {directory}")


def build(directory: str | os.PathLike) -> Kernels:
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    root = Path(directory)
    src, lib, temp = root / "src", root / "lib", root / "temp"
    src.mkdir(parents=True, exist_ok=True)
    compiled_src = src / f"{COMPILED_NAME}.py"
    typed_src = src / f"{TYPED_NAME}.pyx"
    shutil.copyfile(PURE_SOURCE, compiled_src)
    shutil.copyfile(TYPED_SOURCE, typed_src)
    flags = _compile_args()
    extensions = cythonize(
        [
            Extension(COMPILED_NAME, [str(compiled_src)], extra_compile_args=flags),
            Extension(TYPED_NAME, [str(typed_src)], extra_compile_args=flags),
        ],
        compiler_directives={"language_level": 3},
        quiet=True,
        force=True,
    )
    dist = Distribution({"name": "ch14-kernels", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.build_lib = str(lib)
    command.build_temp = str(temp)
    command.parallel = 2
    command.ensure_finalized()
    command.run()
    return Kernels(hamming_scan, _load(COMPILED_NAME, lib), _load(TYPED_NAME, lib))


_built: Kernels | None = None


def kernels() -> Kernels:
    """The three kernels, compiled once per process into a temporary directory."""
    global _built
    if _built is None:
        directory = tempfile.mkdtemp(prefix="pastefile-ch14-")
        atexit.register(shutil.rmtree, directory, True)
        _built = build(directory)
    return _built


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="pastefile-ch14-")
    built = build(target)
    for role, module in built._asdict().items():
        print(f"{role:9} {module.__file__}")
