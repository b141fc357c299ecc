"""The ``pastefile`` command: initdb, upload, info, latest, similar, delete, gc, fsck, backup, restore.

It works on the deployment the server uses: the ``[app:main]`` section of
``-c FILE.ini``, else of ``$PASTEFILE_CONFIG``, else of ./development.ini.
``--embedded`` uses the built-in defaults instead (SQLite and files under
./var).  ``PASTEFILE_*`` environment variables override any of them.
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
from importlib import metadata

from . import urls
from .errors import InvalidRequest, NotFound, PasteFileError
from .service import PasteFileService
from .settings import DEV_SYMLINK_KEY, Settings, SettingsError
from .utils import parse_expiry

CONFIG_ENV = "PASTEFILE_CONFIG"
DEFAULT_CONFIG = "development.ini"


class ConfigError(Exception):
    """The deployment config cannot be found or read (exit code 2)."""


def config_path(args, environ=os.environ) -> str | None:
    """The ini file to read, or None for the embedded defaults (``--embedded``).

    Without ``-c`` the CLI must not quietly make a store of its own under
    ./var and print links no server answers, so it looks where the server's
    config is and says so when there is none."""
    if args.config:
        return args.config
    if args.embedded:
        return None
    if environ.get(CONFIG_ENV):
        return environ[CONFIG_ENV]
    if os.path.isfile(DEFAULT_CONFIG):
        return DEFAULT_CONFIG
    raise ConfigError(
        f"no config: pass -c FILE.ini, set ${CONFIG_ENV}, or run where ./{DEFAULT_CONFIG} is "
        "(--embedded uses the built-in defaults under ./var)"
    )


def load_settings(config_path: str | None) -> dict:
    if not config_path:
        return {}
    parser = configparser.ConfigParser(defaults={"here": os.path.dirname(os.path.abspath(config_path))})
    try:
        if not parser.read(config_path):
            raise ConfigError(f"cannot read {config_path}")
        if not parser.has_section("app:main"):
            raise ConfigError(f"{config_path} has no [app:main] section")
        return {k: v for k, v in parser.items("app:main") if k.startswith("pastefile.")}
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse {config_path}: {' '.join(str(exc).split())}") from None


def _service(args, links: bool = True) -> PasteFileService:
    """The service on the configured deployment; ``links``: the command
    prints or decodes short links, so a development key is worth a warning."""
    settings = load_settings(config_path(args))
    if args.base_url:
        settings["pastefile.base_url"] = args.base_url
    checked = Settings.from_dict(settings)
    if links and checked.symlink_key == DEV_SYMLINK_KEY:
        print(
            "pastefile: warning: the short-link key is the built-in development key; "
            "short links will not match a server with its own pastefile.symlink_key",
            file=sys.stderr,
        )
    return PasteFileService(checked)


def cmd_initdb(args) -> int:
    service = _service(args, links=False)
    service.initdb()
    print(f"database ready: {service.engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_upload(args) -> int:
    from tqdm import tqdm

    if args.server:
        return _upload_to_server(args)
    service = _service(args)
    try:
        expires = parse_expiry(args.expires, service.settings.max_expiry)
    except InvalidRequest as exc:
        print(f"pastefile: {exc}", file=sys.stderr)
        return 1
    service.initdb()
    failures = 0
    base = service.base_url
    links = []
    with tqdm(total=len(args.files), unit="file", disable=args.quiet or len(args.files) < 2, file=sys.stderr) as bar:
        for path in args.files:
            try:
                with open(path, "rb") as f:
                    paste = service.upload(
                        f, os.path.basename(path), w=args.width, h=args.height, expires_in=expires
                    )
            except (OSError, PasteFileError) as exc:
                failures += 1
                tqdm.write(f"{path}: {exc}", file=sys.stderr)
            else:
                line = json.dumps(paste.to_json(base), ensure_ascii=False) if args.json else f"{paste.url_s(base)}  {path}"
                links.append(line)
            bar.update(1)
    for line in links:
        print(line)
    return 1 if failures else 0


def _upload_to_server(args) -> int:
    """``upload --server URL``: over HTTP with tus, resumable; no local
    config or database is involved."""
    from tqdm import tqdm

    from .tusclient import TusClient, TusError

    sizes = {}
    for path in args.files:
        try:
            sizes[path] = os.path.getsize(path)
        except OSError:
            sizes[path] = 0  # reported when the upload opens it
    failures = 0
    links = []
    with tqdm(total=sum(sizes.values()), unit="B", unit_scale=True, unit_divisor=1024,
              disable=args.quiet, file=sys.stderr) as bar:
        client = TusClient(args.server, chunk_size=args.chunk_size,
                           log=(lambda message: tqdm.write(f"pastefile: {message}", file=sys.stderr))
                           if args.verbose else None)
        done = 0  # bytes of the files before this one
        try:
            for path in args.files:
                def progress(sent: int, size: int) -> None:
                    # absolute: a retry or a resume moves the bar back or ahead
                    bar.update(done + sent - bar.n)

                try:
                    result = client.upload(path, expires=args.expires, width=args.width, height=args.height,
                                           progress=progress)
                except (OSError, TusError) as exc:
                    failures += 1
                    tqdm.write(f"pastefile: {path}: {exc}", file=sys.stderr)
                else:
                    paste = result.paste
                    links.append(json.dumps(paste, ensure_ascii=False) if args.json else f"{paste['url_s']}  {path}")
                done += sizes[path]
                bar.update(done - bar.n)
        finally:
            client.close()
    for line in links:
        print(line)
    return 1 if failures else 0


def _chunk_size(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        size = int(value[: len(value) - len(unit)]) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or 256K, 4M, 1G)") from None
    if size < 1:
        raise argparse.ArgumentTypeError("the chunk size must be positive")
    return size


def _paste(service: PasteFileService, text: str):
    """The paste named by a filehash, a short id or a link to either
    (``https://host/s/AbC123``, ``/p/<filehash>``); NotFound otherwise."""
    kind, key = urls.key_of(text)
    if kind == urls.SHORT:
        paste = service.get_by_symlink(key)
    elif kind is not None:
        paste = service.get(key)
    else:
        paste = service.get(key) or service.get_by_symlink(key)
    if paste is None:
        raise NotFound(f"no file {key!r}")
    return paste


def cmd_info(args) -> int:
    service = _service(args)
    paste = _paste(service, args.filehash)
    print(json.dumps(paste.to_json(service.base_url), ensure_ascii=False, indent=2))
    return 0


def cmd_similar(args) -> int:
    service = _service(args)
    paste = _paste(service, args.filehash)
    base = service.base_url
    for other, distance in service.similar(paste, args.distance):
        print(f"{distance:2d}  {other.url_p(base)}  {other.filename}")
    return 0


def cmd_latest(args) -> int:
    service = _service(args)
    base = service.base_url
    for paste in service.latest(args.limit, args.offset):
        print(f"{paste.uploadtime:%Y-%m-%d %H:%M:%S}  {paste.url_p(base)}  {paste.filename}")
    return 0


def cmd_delete(args) -> int:
    service = _service(args)
    for key in args.files:
        paste = _paste(service, key)
        service.remove(paste.filehash)
        print(f"deleted {paste.filehash}")
    return 0


def cmd_gc(args) -> int:
    print(json.dumps(_service(args, links=False).gc(grace=args.grace)))
    return 0


def cmd_fsck(args) -> int:
    report = _service(args, links=False).fsck(repair=args.repair, grace=args.grace, verify=args.verify)
    print(json.dumps(report))
    return 0 if not (report["missing_files"] or report["corrupt_files"]) else 1


def cmd_migrate_store(args) -> int:
    from tqdm import tqdm

    service = _service(args, links=False)
    with tqdm(unit="blob", disable=args.quiet, file=sys.stderr, desc=f"to {args.to}") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = service.migrate_store(args.to, progress)
    print(json.dumps(report))
    return 0 if not report["corrupt"] else 1


def _progress_bar(quiet: bool):
    """A ``progress(stage, done, total)`` drawing one tqdm bar per stage on stderr."""
    from tqdm import tqdm

    bars = {}

    def progress(stage: str, done: int, total: int) -> None:
        if quiet:
            return
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(desc=stage, total=total or None, unit="", file=sys.stderr)
        if total:
            bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


def cmd_backup(args) -> int:
    from .backup import backup

    service = _service(args, links=False)
    progress, close = _progress_bar(args.quiet)
    try:
        report = backup(service, args.directory, progress)
    finally:
        close()
    print(json.dumps(report))
    if report["corrupt"]:
        print(f"pastefile: {report['corrupt']} blobs do not match their address and are not in the backup "
              "(see corrupt_blobs in its manifest.json)", file=sys.stderr)
    return 1 if report["corrupt"] else 0


def cmd_restore(args) -> int:
    from .backup import restore

    service = _service(args, links=False)
    progress, close = _progress_bar(args.quiet)
    try:
        report = restore(service, args.directory, force=args.force, progress=progress,
                         warn=lambda message: print(f"pastefile: warning: {message}", file=sys.stderr))
    finally:
        close()
    print(json.dumps(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pastefile", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-c", "--config",
        help=f"a PasteDeploy .ini whose [app:main] holds pastefile.* settings (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG})",
    )
    where.add_argument("--embedded", action="store_true", help="use the built-in defaults: SQLite and files under ./var")
    parser.add_argument("--base-url", help="host part of printed links (pastefile.base_url)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("initdb", help="create or upgrade the database schema").set_defaults(func=cmd_initdb)

    up = sub.add_parser("upload", help="upload files and print their short links")
    up.add_argument("files", nargs="+", metavar="FILE")
    up.add_argument("-W", "--width", type=int, help="crop-resize images to this width")
    up.add_argument("-H", "--height", type=int, help="crop-resize images to this height")
    up.add_argument("--json", action="store_true", help="print the full JSON record per file (with its delete token)")
    up.add_argument("--expires", metavar="DURATION", help="remove the pastes after this long: seconds, or 30m, 1h, 7d, 2w")
    up.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    up.add_argument(
        "--server", metavar="URL",
        help="upload to this pastefile server over HTTP (tus, resumable: run again to resume) "
             "instead of into the local deployment; needs no config",
    )
    up.add_argument("--chunk-size", type=_chunk_size, default="8M", metavar="SIZE",
                    help="with --server: bytes per request, e.g. 256K, 4M (default 8M)")
    up.add_argument("-v", "--verbose", action="store_true", help="with --server: say what is created, resumed, retried")
    up.set_defaults(func=cmd_upload)

    info = sub.add_parser("info", help="show a paste by filehash, short id or link (https://host/s/AbC123, /p/...)")
    info.add_argument("filehash")
    info.set_defaults(func=cmd_info)

    latest = sub.add_parser("latest", help="list the newest uploads (the web front shows them only when public_latest is on)")
    latest.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    latest.add_argument("--offset", type=int, default=0, help="skip this many of the newest")
    latest.set_defaults(func=cmd_latest)

    similar = sub.add_parser("similar", help="list images that look like this one (pHash distance)")
    similar.add_argument("filehash")
    similar.add_argument("-d", "--distance", type=int, help="largest distance in bits (default: similar_distance)")
    similar.set_defaults(func=cmd_similar)

    delete = sub.add_parser("delete", help="remove pastes by filehash or short link (no token needed here)")
    delete.add_argument("files", nargs="+", metavar="FILEHASH")
    delete.set_defaults(func=cmd_delete)

    gc = sub.add_parser("gc", help="remove expired pastes and blobs nothing refers to")
    gc.add_argument("--grace", type=float, default=3600.0, help="leave blobs younger than this many seconds (default 3600)")
    gc.set_defaults(func=cmd_gc)

    fsck = sub.add_parser("fsck", help="check stored files against the database")
    fsck.add_argument("--repair", action="store_true", help="remove temp files and files no row refers to")
    fsck.add_argument("--verify", action="store_true", help="re-hash every file (slow; sizes are always checked)")
    fsck.add_argument("--grace", type=float, default=3600.0, help="leave files younger than this many seconds (default 3600)")
    fsck.set_defaults(func=cmd_fsck)

    move = sub.add_parser(
        "migrate-store",
        help="copy every blob to the other store (file <-> s3), verified; resumable, safe while serving",
    )
    move.add_argument("--to", required=True, choices=("s3", "file"), help="the store the blobs go to")
    move.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    move.set_defaults(func=cmd_migrate_store)

    back = sub.add_parser(
        "backup",
        help="write a consistent snapshot (database rows, file-backed blobs, settings to keep) into DIR",
    )
    back.add_argument("directory", metavar="DIR", help="a new or empty directory")
    back.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    back.set_defaults(func=cmd_backup)

    rest = sub.add_parser("restore", help="restore a backup made by `pastefile backup` into an empty database")
    rest.add_argument("directory", metavar="DIR")
    rest.add_argument("--force", action="store_true",
                      help="restore even though the configured symlink_key is not the backup's (short links break)")
    rest.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    rest.set_defaults(func=cmd_restore)
    return parser


def _version() -> str:
    try:
        return metadata.version("pastefile")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, SettingsError) as exc:
        print(f"pastefile: {exc}", file=sys.stderr)
        return 2
    except NotFound as exc:
        print(f"pastefile: {exc}", file=sys.stderr)
        return 1
    except PasteFileError as exc:
        print(f"pastefile: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
