"""Taking an upload back over HTTP: the token in the upload's answer, the
delete URL for ShareX-style clients, DELETE with X-Delete-Token."""
from __future__ import annotations

from .webapp_helpers import API, BROWSER, CURL, error_of, unique_image, unique_text


def test_upload_answers_carry_the_token_in_body_and_headers(webapp):
    doc = webapp.upload_json(unique_text(), "t.txt")
    token, url = doc["delete_token"], doc["url_delete"]
    assert url.endswith(f"/x/{doc['filehash']}/{token}")
    res = webapp.upload(unique_text(), "curl.txt", headers=CURL)
    assert res.headers["X-Delete-Token"] and res.headers["X-Delete-Url"].endswith(res.headers["X-Delete-Token"])
    put = webapp.put("/raw.txt", unique_text(), headers=API)
    assert put.headers["X-Delete-Token"] == put.json["delete_token"]
    # the metadata others can read never shows it
    meta = webapp.get(f"/j/{doc['filehash']}").json
    assert "delete_token" not in meta and "url_delete" not in meta
    assert token not in webapp.get(f"/p/{doc['filehash']}", headers=BROWSER).text


def test_delete_url_confirms_then_deletes(webapp):
    data = unique_image("PNG", (40, 30))
    doc = webapp.upload_json(data, "gone.png")
    path = doc["url_delete"][doc["url_delete"].index("/x/"):]
    page = webapp.get(path, headers=BROWSER)
    assert "Delete this file?" in page.text and "gone.png" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert webapp.get(f"/i/{doc['filehash']}").body == data  # a GET deletes nothing
    done = webapp.post(path, headers=BROWSER)
    assert "Deleted" in done.text
    for route in ("p", "i", "d", "j"):
        assert error_of(webapp.get(f"/{route}/{doc['filehash']}", status=404))["status"] == 404
    webapp.get(f"/s/{doc['symlink']}", status=404)
    assert error_of(webapp.post(path, headers=API, status=404))["status"] == 404
    assert error_of(webapp.get(path, headers=API, status=404))["status"] == 404


def test_delete_with_header_and_wrong_tokens(webapp):
    mine = webapp.upload_json(unique_text(), "mine.txt")
    theirs = webapp.upload_json(unique_text(), "theirs.txt")
    fh = mine["filehash"]
    for headers in ({}, {"X-Delete-Token": ""}, {"X-Delete-Token": theirs["delete_token"]},
                    {"X-Delete-Token": mine["delete_token"] + "x"}):
        err = error_of(webapp.delete(f"/j/{fh}", headers={**API, **headers}, status=403))
        assert err["status"] == 403
    assert error_of(webapp.post(f"/x/{fh}/{theirs['delete_token']}", headers=API, status=403))["status"] == 403
    assert error_of(webapp.get(f"/x/{fh}/{theirs['delete_token']}", headers=API, status=403))["status"] == 403
    assert webapp.get(f"/j/{fh}").status_int == 200
    res = webapp.delete(f"/j/{fh}", headers={**API, "X-Delete-Token": mine["delete_token"]})
    assert res.json == {"deleted": fh}
    webapp.get(f"/j/{fh}", status=404)
    assert webapp.get(f"/j/{theirs['filehash']}").status_int == 200
    text = webapp.post(f"/x/{theirs['filehash']}/{theirs['delete_token']}", headers=CURL)
    assert text.text == f"deleted {theirs['filehash']}\n"


def test_deleting_a_paste_keeps_a_twin_over_the_same_bytes(webapp):
    data = unique_text()
    a = webapp.upload_json(data, "a.txt")
    b = webapp.upload_json(data, "b.txt")
    assert a["filehash"] != b["filehash"] and a["sha256"] == b["sha256"]
    res = webapp.post(a["url_delete"][a["url_delete"].index("/x/"):], headers=API)
    assert res.json == {"deleted": a["filehash"]}
    # the deleted one is gone everywhere, its twin is whole
    for route in ("p", "i", "d", "j"):
        webapp.get(f"/{route}/{a['filehash']}", status=404)
    webapp.get(f"/s/{a['symlink']}", status=404)
    assert webapp.get(f"/i/{b['filehash']}").body == data
    assert webapp.get(f"/d/{b['filehash']}").body == data
    assert webapp.get(f"/j/{b['filehash']}").json["filehash"] == b["filehash"]


def test_expiry_on_upload(webapp_factory):
    app = webapp_factory(**{"pastefile.max_expiry": "600"})
    doc = app.upload_json(unique_text(), "brief.txt", expires=60)
    assert doc["expires"] and app.get(f"/j/{doc['filehash']}").json["expires"] == doc["expires"]
    put = app.put("/brief2.txt?expires=600", unique_text(), headers=API)
    assert put.json["expires"]
    for bad in ("0", "601", "-1", "soon"):
        err = error_of(app.upload(unique_text(), "bad.txt", status=400, headers=API, expires=bad))
        assert "expires" in err["message"]
        app.put(f"/bad.txt?expires={bad}", unique_text(), headers=API, status=400)
    assert app.upload_json(unique_text(), "kept.txt")["expires"] is None


def test_expiry_takes_durations(webapp_factory):
    app = webapp_factory(**{"pastefile.max_expiry": "86400"})
    half = app.upload_json(unique_text(), "half.txt", expires="30m")["expires"]
    hour = app.put("/hour.txt?expires=1h", unique_text(), headers=API).json["expires"]
    day = app.upload_json(unique_text(), "day.txt", expires="1d")["expires"]
    assert half < hour < day
    assert app.upload_json(unique_text(), "secs.txt", expires="90s")["expires"]
    for bad in ("2d", "1w", "0m", "1y", "1 h", "h", "1.5h"):
        err = error_of(app.upload(unique_text(), "bad.txt", status=400, headers=API, expires=bad))
        assert err["message"].startswith("expires must be"), bad
        assert error_of(app.put(f"/bad.txt?expires={bad}", unique_text(), headers=API, status=400))["message"] == err["message"]
    assert "between 1 and 86400" in error_of(app.upload(unique_text(), "b.txt", status=400, headers=API, expires="2d"))["message"]


def test_a_repeated_upload_never_changes_the_expiry_it_shows(webapp_factory):
    """Anyone can upload the same bytes under the same name: that never
    keeps the first uploader's expiring paste alive, nor shortens a kept one."""
    app = webapp_factory(**{"pastefile.max_expiry": "600"})
    data = unique_text()
    brief = app.upload_json(data, "twice.txt", expires=60)
    kept = app.upload_json(data, "twice.txt")
    assert kept["filehash"] != brief["filehash"] and kept["expires"] is None and kept["delete_token"]
    assert app.get(f"/j/{brief['filehash']}").json["expires"] == brief["expires"]
    again = app.upload_json(data, "twice.txt", expires=600)
    assert again["filehash"] not in (brief["filehash"], kept["filehash"]) and again["expires"]
    assert app.get(f"/j/{kept['filehash']}").json["expires"] is None
    # a repeat without expiry of a kept paste is still that paste
    assert app.upload_json(data, "twice.txt")["filehash"] == kept["filehash"]


def test_a_visitors_resize_answers_no_token_and_goes_with_its_source(webapp):
    """GET /r/ makes a paste of someone else's picture: whoever asked first
    gets no power to delete it, and the uploader's delete takes it along."""
    src = webapp.upload_json(unique_image("PNG", (80, 60)), "mine.png")
    made = webapp.get(f"/r/{src['filehash']}?w=40&h=30", headers=API).json
    assert made["filehash"] != src["filehash"] and made.get("delete_token") is None and made.get("url_delete") is None
    again = webapp.get(f"/r/{src['filehash']}?w=40&h=30", headers=API).json
    assert again["filehash"] == made["filehash"] and again.get("delete_token") is None
    webapp.get(f"/p/{made['filehash']}", status=200)
    webapp.delete(f"/j/{src['filehash']}", headers={**API, "X-Delete-Token": src["delete_token"]})
    for fh in (src["filehash"], made["filehash"]):
        webapp.get(f"/p/{fh}", status=404)
        webapp.get(f"/j/{fh}", headers=API, status=404)
    webapp.get(f"/s/{made['symlink']}", status=404)
