"""PasteDeploy ini files for every server of the load comparison.

Every server, pastefile and the references alike, gets the ``[server:main]``
section of the project's production.ini as it is, except:

* the listening address: a free port on 127.0.0.1 (``listen``, ``host`` and
  ``port``, whichever the section uses; ``listen`` when it names none);
* ``url_scheme = http`` (no TLS proxy in front);
* ``max_request_body_size`` raised to 2 GiB + 1 MiB for the large uploads;
* file paths of logs (and pid files) moved into the run's temp dir.

The logging sections are copied the same way, with their file paths moved.
pastefile's ``[app:main]`` is production.ini's with the storage, database,
cache, base URL, key and upload limit of the run; reference apps get their
own ``[app:main]`` through PasteDeploy's ``call:`` scheme.
"""
from __future__ import annotations

import configparser
import json
import os
import platform
import re
import secrets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCTION_INI = os.path.join(ROOT, "production.ini")

MAX_BODY = (2 << 30) + (1 << 20)
LOGGING_SECTIONS = ("loggers", "handlers", "formatters")
LOGGING_PREFIXES = ("logger_", "handler_", "formatter_")
_QUOTED_PATH = re.compile(r"""(['"])(/[^'"]*)\1""")


def _parser() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keep the keys' case
    return parser


def read(path: str = PRODUCTION_INI) -> configparser.RawConfigParser:
    parser = _parser()
    with open(path, encoding="utf-8") as f:
        parser.read_file(f)
    return parser


def _moved(path: str, logdir: str, prefix: str) -> str:
    return os.path.join(logdir, f"{prefix}-{os.path.basename(path.rstrip('/')) or 'log'}")


def server_section(source: configparser.RawConfigParser, port: int, logdir: str, prefix: str) -> dict[str, str]:
    if not source.has_section("server:main"):
        raise ValueError("production.ini has no [server:main] section")
    section = {key: source.get("server:main", key) for key in source.options("server:main")}
    named = False
    if "listen" in section:
        section["listen"] = f"127.0.0.1:{port}"
        named = True
    if "host" in section:
        section["host"] = "127.0.0.1"
        named = True
    if "port" in section:
        section["port"] = str(port)
        named = True
    if not named:
        section["listen"] = f"127.0.0.1:{port}"
    section.pop("unix_socket", None)
    section["url_scheme"] = "http"
    section["max_request_body_size"] = str(MAX_BODY)
    for key, value in list(section.items()):
        if value.startswith("/") and any(word in key.lower() for word in ("log", "pid", "file")):
            section[key] = _moved(value, logdir, prefix)
    return section


def logging_sections(source: configparser.RawConfigParser, logdir: str, prefix: str) -> dict[str, dict[str, str]]:
    out = {}
    for name in source.sections():
        if name in LOGGING_SECTIONS or name.startswith(LOGGING_PREFIXES):
            values = {key: source.get(name, key) for key in source.options(name)}
            if name.startswith("handler_"):
                for key in ("args", "kwargs", "filename"):
                    if key in values:
                        values[key] = _QUOTED_PATH.sub(
                            lambda m: f"{m.group(1)}{_moved(m.group(2), logdir, prefix)}{m.group(1)}", values[key]
                        )
            out[name] = values
    return out


def pastefile_app(source: configparser.RawConfigParser, overrides: dict[str, str]) -> dict[str, str]:
    app = {key: source.get("app:main", key) for key in source.options("app:main")}
    # no nginx in front: the app must send the bytes itself
    app.pop("pastefile.accel_redirect", None)
    app.update(overrides)
    return app


def run_app(source: configparser.RawConfigParser, db_url: str, storage_root: str, base_url: str,
            cache: dict[str, str]) -> dict[str, str]:
    """pastefile's ``[app:main]`` for a run: production.ini's with the run's
    database (migrated here), files, URL, cache, a fresh key and room for
    the large uploads."""
    from pastefile.core import db as core_db

    engine = core_db.make_engine(db_url)
    try:
        core_db.upgrade(engine)
    finally:
        engine.dispose()
    return pastefile_app(source, {
        "pastefile.db_url": db_url,
        "pastefile.storage_root": storage_root,
        "pastefile.base_url": base_url,
        "pastefile.auto_migrate": "true",
        "pastefile.symlink_key": secrets.token_hex(32),
        "pastefile.max_upload_size": "2G",
        **cache,
    })


def cpu_model() -> str:
    """The machine's CPU, as /proc/cpuinfo names it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_document(path: str, document: dict) -> None:
    """A benchmark's JSON document, its directory made when missing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(document, f, indent=1)


def write(path: str, app: dict[str, str], server: dict[str, str], logging: dict[str, dict[str, str]]) -> None:
    out = _parser()
    out["app:main"] = app
    out["server:main"] = server
    for name, values in logging.items():
        out[name] = values
    with open(path, "w", encoding="utf-8") as f:
        out.write(f)


def server_env(rundir: str) -> dict[str, str]:
    """The servers' environment: this one without PASTEFILE_* overrides (the
    generated ini is the whole configuration), with ``benchmarks`` importable
    for the ``call:benchmarks.load...`` apps.

    Only the ``benchmarks`` package goes on the path, through a link in the
    run's dir: the repository root itself may hold a stale
    ``pastefile.egg-info`` from a build, whose entry points would shadow the
    installed ones.
    """
    pythonpath = os.path.join(rundir, "pythonpath")
    os.makedirs(pythonpath, exist_ok=True)
    link = os.path.join(pythonpath, "benchmarks")
    if not os.path.lexists(link):
        os.symlink(os.path.join(ROOT, "benchmarks"), link)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASTEFILE_")}
    env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
