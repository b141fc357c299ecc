"""The web front talks to the facade and core's public names only: it never
builds a storage path, discards a staged blob or opens a session itself.
A source scan, so that reaching past the facade fails here first."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pastefile.core
import pastefile.webapp

WEBAPP = Path(pastefile.webapp.__file__).parent

# modules of core the web front may import by name: errors it maps to
# answers, link shapes its routes use, type policy and small helpers
PUBLIC_CORE_MODULES = frozenset({"errors", "urls", "mimes", "utils", "metrics"})

FORBIDDEN = {
    r"\.store\b": "the blob store (service.content / service.discard_upload instead)",
    r"blobstore": "core.blobstore (its staging types are re-exported by pastefile.core)",
    r"session_factory": "the session factory (service.new_session instead)",
    r"\.root\b": "the store's root (Content.relative for X-Accel-Redirect)",
}
# where the service is kept on the registry: one module knows it
REGISTRY_SERVICE = re.compile(r"registry\.pastefile\b")
REGISTRY_SERVICE_ALLOWED = {"services.py"}


def _sources(*patterns: str) -> list[Path]:
    files = [p for pattern in patterns for p in WEBAPP.rglob(pattern) if "__pycache__" not in p.parts]
    assert files, f"nothing to scan under {WEBAPP}"
    return sorted(files)


def test_webapp_mentions_no_storage_or_session_internals():
    found = []
    for path in _sources("*.py", "*.jinja2"):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern, why in FORBIDDEN.items():
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(WEBAPP)}:{lineno}: {why}: {line.strip()}")
            if REGISTRY_SERVICE.search(line) and path.name not in REGISTRY_SERVICE_ALLOWED:
                found.append(f"{path.relative_to(WEBAPP)}:{lineno}: the service is request.pastefile "
                             f"(services.service_of(registry) without a request): {line.strip()}")
    assert found == []


def _core_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module of core or name taken from pastefile.core) for each import of core."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("pastefile.core")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("pastefile.core"):
            if node.module == "pastefile.core":
                out += [(node.lineno, f"pastefile.core.{alias.name}") for alias in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


def _allowed(name: str) -> bool:
    parts = name.split(".")
    if parts == ["pastefile", "core"]:
        return True
    if len(parts) != 3:
        return False  # a module deeper in core
    return parts[2] in pastefile.core.__all__ or parts[2] in PUBLIC_CORE_MODULES


def test_webapp_imports_only_public_core_names():
    found = []
    for path in _sources("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += [f"{path.relative_to(WEBAPP)}:{lineno}: {name}"
                  for lineno, name in _core_imports(tree) if not _allowed(name)]
    assert found == []


def test_the_scan_catches_what_it_is_for():
    """The checks above would fail on the shapes they forbid."""
    bad = "from pastefile.core.blobstore import StagedBlob\nimport pastefile.core.lookups\nfrom pastefile.core import ingest\n"
    names = [name for _, name in _core_imports(ast.parse(bad))]
    assert names == ["pastefile.core.blobstore", "pastefile.core.lookups", "pastefile.core.ingest"]
    assert not any(_allowed(name) for name in names)
    assert all(_allowed(name) for name in ("pastefile.core", "pastefile.core.NotFound", "pastefile.core.errors",
                                           "pastefile.core.Content", "pastefile.core.StagedBlob"))
    lines = ["service.store.discard(x)", "root = svc.store.root", "config.registry.pastefile.session_factory"]
    assert all(any(re.search(p, line) for p in FORBIDDEN) for line in lines)
    assert not any(re.search(p, 'response.cache_control = "no-store"') for p in FORBIDDEN)


def test_core_calls_only_what_the_blob_store_port_declares():
    """Every method core calls on its blob store is part of ``BlobStore``,
    and the port declares nothing core leaves unused: an object store that
    implements the port is enough to run the service."""
    from pastefile.core.blobstore import BlobStore

    declared = {name for name in dir(BlobStore) if not name.startswith("_")}
    called: set[str] = set()
    implementations = {"blobstore.py", "s3store.py"}
    for path in Path(pastefile.core.__file__).parent.glob("*.py"):
        if path.name in implementations:
            continue
        # the blob store is reached as self.store or parts.store
        # (or, moving blobs between stores, from one store to another, or the
        # new and old stores of stores.MovingStore)
        called |= set(re.findall(r"(?:(?:self|parts)\.store|self\.new|self\.old|from_store|to_store)\.([a-z_]+)\(",
                                 path.read_text(encoding="utf-8")))
    assert {"stage", "commit", "content", "trash"} <= called, "the scan no longer finds the store calls"
    assert called <= declared, sorted(called - declared)
    assert declared <= called, sorted(declared - called)
