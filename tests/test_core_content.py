"""What the facade gives the web front: the content to serve, a way to give
up a staged upload, and sessions for a request-wide transaction."""
from __future__ import annotations

import io
import os

import pytest

from pastefile.core import Content

from .conftest import only_file_stores, temp_files


def test_content_of_an_inline_paste_is_its_bytes(service_factory):
    service = service_factory(**{"pastefile.inline_max": "4k"})
    data = b"kept in the row\n" * 10
    paste = service.upload(io.BytesIO(data), "small.txt")
    assert paste.inline
    content = service.content(paste)
    assert content == Content(data=data)
    assert content.path is None and content.relative is None
    with content.open() as f:
        assert f.read() == data


@only_file_stores
def test_content_of_a_stored_file_is_its_path_under_the_root(service_factory):
    service = service_factory(**{"pastefile.inline_max": "4k"})
    data = os.urandom(4).hex().encode() + b" a file on disk\n" * 1000
    paste = service.upload(io.BytesIO(data), "large.txt")
    assert not paste.inline
    content = service.content(paste)
    sha = paste.sha256
    assert content.data is None
    assert content.path == service.path(paste)
    assert content.relative == f"{sha[:2]}/{sha[2:4]}/{sha}"
    assert content.path.endswith(os.sep + content.relative)
    with content.open() as f:
        assert f.read() == data


def test_content_is_frozen():
    content = Content.of_bytes(b"x")
    assert content == Content(data=b"x") and hash(content) == hash(Content(data=b"x"))
    with pytest.raises(AttributeError):
        content.data = b"y"


@pytest.mark.parametrize("size", [10, 100_000])
def test_discard_upload_gives_up_a_staged_upload(service_factory, size):
    service = service_factory(**{"pastefile.inline_max": "4k"})
    with service.receive() as writer:
        writer.write(b"z" * size)
        staged = writer.finish()
    service.discard_upload(staged)
    assert temp_files(service) == [] and service.count() == (0, 0)
    assert staged.fd == -1 and staged.path is None


def test_new_session_runs_on_the_service_engine(service):
    session = service.new_session(info={"request": "r"})
    try:
        assert session.get_bind() is service.engine and session.info == {"request": "r"}
        assert service.bind(session).count() == (0, 0)
    finally:
        session.close()


def test_request_dbsession_comes_from_the_service(webapp):
    from pyramid.scripting import prepare

    env = prepare(registry=webapp.registry)
    try:
        session = env["request"].dbsession
        assert session.get_bind() is webapp.service.engine
        assert session.info["request"] is env["request"]
    finally:
        env["closer"]()
