"""``/sharex.sxcu``: a ShareX custom uploader that points at this server,
and an upload made the way it describes works, its ``{json:...}`` paths
naming keys the answer has."""
from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest

import pastefile.webapp

from .conftest import settings_for
from .servers import LiveServer
from .webapp_helpers import WebApp, unique_image, unique_text

JSON_PATH = re.compile(r"\{json:([^}]+)\}")
KEYS = {"Version", "Name", "DestinationType", "RequestMethod", "RequestURL", "Headers", "Body",
        "FileFormName", "URL", "ThumbnailURL", "DeletionURL", "ErrorMessage"}


@pytest.fixture
def app(tmp_path):
    test = WebApp(pastefile.webapp.main({}, **settings_for("sqlite", tmp_path)))
    yield test
    test.service.close()


def resolve(template: str, answer: dict) -> str:
    """``template`` with each ``{json:a.b}`` replaced as ShareX does; a path
    the answer lacks fails the test."""
    def value(match):
        node = answer
        for key in match.group(1).split("."):
            assert isinstance(node, dict) and key in node, f"{match.group(1)} not in {answer}"
            node = node[key]
        assert isinstance(node, str) and node
        return node

    assert JSON_PATH.search(template), template
    return JSON_PATH.sub(value, template)


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_the_uploader_parses_and_points_at_this_server(app):
    res = app.get("/sharex.sxcu", headers={"Host": "files.example.org:8080"})
    assert res.headers["Content-Disposition"] == 'attachment; filename="files.example.org_8080.sxcu"'
    assert res.content_type == "application/json"
    sxcu = json.loads(res.body)
    assert set(sxcu) == KEYS
    assert sxcu["RequestURL"] == "http://files.example.org:8080/"
    assert sxcu["RequestMethod"] == "POST" and sxcu["Body"] == "MultipartFormData"
    assert sxcu["FileFormName"] == "file" and sxcu["Headers"] == {"Accept": "application/json"}
    assert sxcu["DestinationType"] == "ImageUploader, TextUploader, FileUploader"
    assert "files.example.org:8080" in sxcu["Name"]
    assert app.get("/sharex.sxcu").headers["Content-Disposition"] == 'attachment; filename="localhost.sxcu"'
    assert app.head("/sharex.sxcu").status_int == 200


def test_put_sharex_sxcu_still_uploads_a_file(app):
    data = unique_text()
    doc = app.put("/sharex.sxcu", data, headers={"Accept": "application/json"}).json
    assert doc["filename"] == "sharex.sxcu"
    assert app.get(f"/i/{doc['filehash']}").body == data


@pytest.mark.parametrize("name, data", [("shot.png", unique_image("PNG")), ("notes.txt", unique_text())])
def test_an_upload_as_the_uploader_describes(app, name, data):
    sxcu = app.get("/sharex.sxcu").json
    body, content_type = multipart(sxcu["FileFormName"], name, data)
    res = app.request(sxcu["RequestURL"], method=sxcu["RequestMethod"], body=body,
                      headers={**sxcu["Headers"], "Content-Type": content_type, "User-Agent": "ShareX/17.0"})
    assert res.status_int == 200 and res.content_type == "application/json"
    answer = res.json
    url, thumb, delete = (resolve(sxcu[key], answer) for key in ("URL", "ThumbnailURL", "DeletionURL"))
    for link in (url, thumb, delete):
        assert link.startswith("http://localhost/")
    assert url == answer["url_p"] and app.get(url).status_int == 200
    assert app.get(thumb).body == data
    assert "<form" in app.get(delete).text  # the confirmation page
    # an upload refused: the error's message where ErrorMessage says
    body, content_type = multipart(sxcu["FileFormName"], "empty.txt", b"")
    res = app.request(sxcu["RequestURL"], method="POST", body=body, status="*",
                      headers={**sxcu["Headers"], "Content-Type": content_type})
    assert res.status_int >= 400
    assert resolve(sxcu["ErrorMessage"], res.json)


def test_the_uploader_of_a_live_server(tmp_path):
    app = pastefile.webapp.main({}, **settings_for("sqlite", tmp_path))
    try:
        with LiveServer(app) as server:
            with urllib.request.urlopen(f"{server.url}/sharex.sxcu", timeout=30) as response:
                port = server.url.rsplit(":", 1)[1]
                assert response.headers["Content-Disposition"] == f'attachment; filename="127.0.0.1_{port}.sxcu"'
                sxcu = json.loads(response.read())
            assert sxcu["RequestURL"] == server.url + "/"
            data = unique_image("PNG")
            body, content_type = multipart(sxcu["FileFormName"], "live.png", data)
            req = urllib.request.Request(sxcu["RequestURL"], data=body, method=sxcu["RequestMethod"],
                                         headers={**sxcu["Headers"], "Content-Type": content_type})
            with urllib.request.urlopen(req, timeout=30) as response:
                answer = json.loads(response.read())
            with urllib.request.urlopen(resolve(sxcu["ThumbnailURL"], answer), timeout=30) as response:
                assert response.read() == data
            assert resolve(sxcu["URL"], answer).startswith(server.url + "/p/")
            assert resolve(sxcu["DeletionURL"], answer).startswith(server.url + "/x/")
    finally:
        app.registry.pastefile.close()
