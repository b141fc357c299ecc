"""pastefile: file and image hosting service and embeddable core library."""
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_ext import cython_extensions  # noqa: E402

PACKAGES = {
    "pastefile.core": "core",
    "pastefile.core.metadata": "core/metadata",
    "pastefile.core.migrations": "core/migrations",
    "pastefile.core.migrations.versions": "core/migrations/versions",
    "pastefile.ext": "ext",
    "pastefile.webapp": "webapp",
    "pastefile.webapp.views": "webapp/views",
}

install_requires = [
    "alembic>=1.13",
    "boto3>=1.34",
    "cffi>=1.16",
    "multipart>=1.2",
    "Pillow>=10.2",
    "prometheus_client>=0.19",
    "psycopg2>=2.9.9",
    "pymemcache>=4.0",
    "pyramid>=2.0.2",
    "pyramid_jinja2>=2.10",
    "pyramid_retry>=2.1.1",
    "pyramid_tm>=2.5",
    "python-magic>=0.4.27",
    "SQLAlchemy>=2.0.25",
    "tqdm>=4.66",
    "transaction>=4.0",
    "waitress>=3.0",
    "zope.sqlalchemy>=3.1",
]

tests_require = [
    "Cython>=3.0.8",
    "Flask>=3.0",
    "Flask-SQLAlchemy>=3.1",
    "hypothesis>=6.100",
    "imagehash>=4.3.2",
    "line_profiler>=4.1",
    "matplotlib>=3.8",
    "numpy>=2.0",
    "py-spy>=0.3.14",
    "pytest>=8.0",
    "pytest-benchmark>=4.0",
    "pytest-postgresql>=6.0",
    "pytest-timeout>=2.2",
    "pyvips>=2.2",
    "schemathesis>=4.0",
    "selenium>=4.20",
    "WebTest>=3.0.1",
]

# what `make run` (pserve development.ini) adds: development.ini includes the
# debug toolbar; a production install (`pip install .`) leaves it out
dev_requires = [
    "pyramid_debugtoolbar>=4.12",
]

# the tests load development.ini and an app with the toolbar too
tests_require += dev_requires

setup(
    name="pastefile",
    version="0.1.0",
    license="MIT",
    description="File and image hosting service with an embeddable, C-accelerated core",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={
        "pastefile.core.migrations": ["script.py.mako"],
        "pastefile.ext": ["*.pyi", "*.pxd", "py.typed"],
        "pastefile.webapp": ["templates/*.jinja2", "static/*"],
    },
    include_package_data=True,
    zip_safe=False,
    setup_requires=["cffi>=1.16"],
    cffi_modules=["build_ext.py:ffibuilder"],
    ext_modules=cython_extensions(),
    install_requires=install_requires,
    extras_require={"test": tests_require, "dev": dev_requires},
    entry_points={
        "paste.app_factory": ["main = pastefile.webapp:main"],
        "paste.server_runner": ["main = pastefile.webapp.server:serve_paste"],
        "console_scripts": ["pastefile = pastefile.core.cli:main"],
    },
)
