"""``pip install .`` builds a wheel that compiles the extensions and carries
templates, static files and migrations; the compiled modules import from a
fresh virtualenv."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# building the wheel compiles every extension (up to 900 s allowed per step)
pytestmark = pytest.mark.timeout(1800)


def _run(*argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), ROOT)
    (path,) = [p for p in out.iterdir() if p.suffix == ".whl"]
    return path


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("pastefile/ext/_hashing") and n.endswith(".so") for n in names)
    assert any(n.startswith("pastefile/ext/_geometry") and n.endswith(".so") for n in names)
    for required in (
        "pastefile/core/migrations/env.py",
        "pastefile/core/migrations/script.py.mako",
        "pastefile/core/migrations/versions/0001_initial.py",
        "pastefile/webapp/templates/index.jinja2",
        "pastefile/webapp/static/app.js",
        "pastefile/ext/_geometry.pyi",
    ):
        assert required in names, required


def test_extensions_import_in_fresh_virtualenv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    # the compiled modules need only cffi's backend at import time
    _run(python, "-m", "pip", "install", "-q", "--no-deps", str(wheel))
    _run(python, "-m", "pip", "install", "-q", "cffi>=1.16")
    check = (
        "import hashlib, pastefile.ext._hashing as h, pastefile.ext._geometry as g\n"
        "from pastefile.ext.hashing import sha256\n"
        "assert sha256(b'abc').hexdigest() == hashlib.sha256(b'abc').hexdigest()\n"
        "assert g.crop_resize_geometry(400, 300, 100, 100) == (50, 0, 350, 300, 100, 100)\n"
        "print(h.__file__)"
    )
    out = _run(python, "-c", check, cwd=str(tmp_path)).stdout
    assert str(env_dir) in out


# what only the tests, benchmarks and development use: never pulled by `pip install .`
NOT_FOR_PRODUCTION = {
    "pytest", "pytest-benchmark", "pytest-postgresql", "pytest-timeout", "hypothesis", "selenium", "flask",
    "flask-sqlalchemy", "matplotlib", "numpy", "imagehash", "line-profiler", "py-spy", "pyvips",
    "schemathesis", "webtest", "cython", "pyramid-debugtoolbar",
}


def _requirements(wheel) -> list[tuple[str, str | None]]:
    """(normalized name, extra or None) of each Requires-Dist of the wheel."""
    import email
    import re

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    out = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        spec, _, marker = requirement.partition(";")
        project = re.split(r"[\s<>=!~\[(]", spec.strip(), maxsplit=1)[0]
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        out.append((re.sub(r"[-_.]+", "-", project).lower(), extra.group(1) if extra else None))
    return out


def test_production_install_pulls_no_test_stack_or_debug_toolbar(wheel):
    requirements = _requirements(wheel)
    unconditional = {name for name, extra in requirements if extra is None}
    assert unconditional, "the wheel lists no requirements at all"
    assert unconditional & NOT_FOR_PRODUCTION == set()
    assert {"pyramid", "sqlalchemy", "waitress"} <= unconditional
    # everything the test extra adds stays out of the plain install
    assert unconditional & {name for name, extra in requirements if extra == "test"} == set()


def test_dev_and_test_extras_carry_the_debug_toolbar(wheel):
    requirements = _requirements(wheel)
    assert ("pyramid-debugtoolbar", "dev") in requirements
    # development.ini and the tests load the toolbar: `pip install .[test]` must bring it
    assert ("pyramid-debugtoolbar", "test") in requirements
    assert {("pytest", "test"), ("hypothesis", "test"), ("selenium", "test")} <= set(requirements)
    assert not {name for name, extra in requirements if extra == "dev"} & {"pytest", "selenium", "hypothesis"}


def test_make_run_needs_no_browser_load_tool_or_database_server():
    """``make run`` installs the package with its dev extra and only the
    Debian packages that build and serve it (a dry run: nothing executes)."""
    result = _run("make", "-n", "-B", "-C", ROOT, "run")
    commands = result.stdout
    assert "pserve development.ini" in commands
    assert ".[dev]" in commands and ".[test]" not in commands
    for unwanted in ("chromium", "wrk", "postgresql", "memcached", "nginx", "radosgw", "ceph", "libvips",
                     "exiftool"):
        assert unwanted not in commands, unwanted
    for needed in ("build-essential", "python3-dev", "python3-venv", "libpq-dev", "libmagic1", "libjpeg-dev"):
        assert needed in commands, needed
