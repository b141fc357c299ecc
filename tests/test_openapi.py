"""``/openapi.json`` describes what the app really answers.

schemathesis generates requests from the document (valid and invalid ones)
and sends them to the app under waitress on a loopback port; every answer
must be free of 5xx, have a status, content type, headers and body the
document declares for that operation (error bodies included), and carry no
traceback.  Examples point at real pastes so the explicit phase reaches
files, renditions, short links and a deletion, not only 404s.
"""
from __future__ import annotations

import json
import urllib.request
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import pastefile.webapp

from .conftest import settings_for
from .servers import LiveServer
from .webapp_helpers import unique_image, unique_text

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/offset+octet-stream")
def _offset_body(ctx, value) -> bytes:
    """tus PATCH bodies: the generated binary as sent."""
    return value if isinstance(value, bytes) else str(value).encode()


class Live:
    def __init__(self, server: LiveServer):
        self.server = server
        self.url = server.url
        self.seeds: dict[str, dict] = {}

    def tus(self, data: bytes) -> dict:
        """A resumable upload of ``data``, complete; its id."""
        req = urllib.request.Request(f"{self.url}/files/", data=data, method="POST", headers={
            "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
            "Content-Type": "application/offset+octet-stream"})
        with urllib.request.urlopen(req, timeout=30) as response:
            return {"id": response.headers["Location"].rsplit("/", 1)[1]}

    def put(self, name: str, data: bytes) -> dict:
        req = urllib.request.Request(f"{self.url}/{name}", data=data, method="PUT",
                                     headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openapi")
    app = pastefile.webapp.main({}, **settings_for("sqlite", tmp, **{"pastefile.max_upload_size": "256k"}))
    with LiveServer(app) as server:
        live = Live(server)
        live.seeds = {
            "image": live.put("seed.png", unique_image("PNG", (80, 60))),
            "text": live.put("seed.txt", unique_text(2000)),
            "doomed": live.put("doomed.txt", unique_text(1000)),
            "tus": live.tus(unique_text(1500)),
        }
        yield live
    app.registry.pastefile.close()


def _with_examples(doc: dict, seeds: dict) -> dict:
    """The served document, its path parameters given real pastes as examples."""
    examples = {
        "filehash": seeds["image"]["filehash"],
        "symlink": seeds["image"]["symlink"],
        "filename": "example.txt",
        "id": seeds["tus"]["id"],
    }
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if path.startswith("/x/"):
                    param["example"] = {"filehash": seeds["doomed"]["filehash"],
                                        "token": seeds["doomed"]["delete_token"]}[param["name"]]
                elif param["in"] == "path":
                    param["example"] = examples[param["name"]]
    return doc


@pytest.fixture(scope="module")
def api_schema(live):
    with urllib.request.urlopen(f"{live.url}/openapi.json", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        doc = json.loads(response.read())
    assert doc["servers"] == [{"url": live.url}]
    return schemathesis.openapi.from_dict(_with_examples(doc, live.seeds))


def test_document_covers_the_json_api(api_schema, live):
    with urllib.request.urlopen(f"{live.url}/openapi.json", timeout=30) as response:
        doc = json.loads(response.read())
    operations = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert {("/", "post"), ("/{filename}", "put"), ("/j/{filehash}", "get"), ("/latest", "get"),
            ("/r/{filehash}", "get"), ("/i/{filehash}", "get"), ("/x/{filehash}/{token}", "post")} <= operations
    raw = {p["name"] for p in doc["paths"]["/i/{filehash}"]["get"]["parameters"]}
    assert {"w", "h", "fit", "format", "q", "sig"} <= raw
    delete = doc["paths"]["/x/{filehash}/{token}"]["post"]["responses"]
    assert {"200", "403", "404"} <= set(delete)
    error = doc["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["status", "title", "message"]


def _check(live, case) -> None:
    response = case.call(base_url=live.url, timeout=30)
    assert b"Traceback" not in response.content
    case.validate_response(response, checks=CHECKS)


def _run(live, strategy, examples: int) -> Counter:
    """Checks the generated cases; how many were sent, per operation label."""
    sent: Counter = Counter()

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        _check(live, case)
        sent[case.operation.label] += 1

    run()
    return sent


def _operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def _negatable(operation) -> bool:
    """Whether the operation has anything an invalid request can get wrong."""
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_any_operation_answers_as_documented(api_schema, live, mode):
    """Every operation, with generated (and, negative, invalid) parameters and
    bodies: each one is sent its own cases, and each must have been sent some."""
    operations = _operations(api_schema)
    if mode == GenerationMode.NEGATIVE:
        operations = [op for op in operations if _negatable(op)]
    assert len(operations) >= 10
    sent: Counter = Counter()
    for operation in operations:
        sent.update(_run(live, operation.as_strategy(generation_mode=mode), 15))
    assert set(sent) == {op.label for op in operations}, f"operations never sent: {sent}"


@pytest.mark.parametrize("seed", ["image", "text"])
def test_operations_on_real_pastes_answer_as_documented(api_schema, live, seed):
    """Operations on an existing paste: renditions of every spec, ranges,
    resized copies, metadata, short links."""
    doc = live.seeds[seed]
    fixed = {"filehash": doc["filehash"], "symlink": doc["symlink"]}
    expected, sent = set(), Counter()
    for operation in _operations(api_schema):
        names = {p.name for p in operation.path_parameters}
        if not names or not names <= set(fixed) or operation.method.upper() != "GET":
            continue
        expected.add(operation.label)
        sent.update(_run(live, operation.as_strategy(path_parameters={n: fixed[n] for n in names}), 25))
    assert {"GET /j/{filehash}", "GET /i/{filehash}", "GET /d/{filehash}", "GET /r/{filehash}",
            "GET /s/{symlink}", "GET /p/{filehash}"} <= expected
    assert set(sent) == expected, f"operations never sent: {sent}"


def test_delete_answers_as_documented(api_schema, live):
    doomed = live.put("doomed.txt", unique_text(1000))
    operation = api_schema["/x/{filehash}/{token}"]["POST"]
    case = operation.Case(path_parameters={"filehash": doomed["filehash"], "token": "not-the-token"})
    _check(live, case)
    case = operation.Case(path_parameters={"filehash": doomed["filehash"], "token": doomed["delete_token"]})
    response = case.call(base_url=live.url, timeout=30)
    case.validate_response(response, checks=CHECKS)
    assert response.status_code == 200 and response.json() == {"deleted": doomed["filehash"]}
    response = case.call(base_url=live.url, timeout=30)
    case.validate_response(response, checks=CHECKS)
    assert response.status_code == 404
