"""``/openapi.json``: the JSON API as an OpenAPI 3.0 document.

It is built from the running settings (size bounds) and the address it is
asked from (``servers``), and describes what the views really answer,
error bodies included: ``{"error": {"status", "title", "message"}}`` for
API clients, the same page as HTML for browsers.
"""
from __future__ import annotations

from pyramid.view import view_config

from pastefile.core.utils import FILEHASH_RE

from .params import INT_MAX

JSON = "application/json"
HTML = "text/html"
TEXT = "text/plain"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {JSON: {"schema": _ref("Error")}, HTML: {"schema": {"type": "string"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses: int) -> dict:
    return {str(status): {"$ref": f"#/components/responses/{_ERROR_NAMES[status]}"} for status in statuses}


_ERROR_NAMES = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    413: "TooLarge",
    415: "UnsupportedType",
    416: "RangeNotSatisfiable",
    422: "Unprocessable",
    409: "Conflict",
    410: "Gone",
    412: "PreconditionFailed",
    423: "Locked",
    429: "TooManyRequests",
    460: "ChecksumMismatch",
    503: "Unavailable",
    507: "InsufficientStorage",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}}


def _schemas(max_side: int) -> dict:
    nullable_int = {"type": "integer", "nullable": True, "minimum": 0}
    paste = {
        "type": "object",
        "description": "A paste: links and display values (url_d url_i url_s url_p filename size time type quoteurl; "
        "size human-readable) and exact values; the upload's own answer adds delete_token and url_delete.",
        "required": [
            "url_d", "url_i", "url_s", "url_p", "filename", "size", "time", "type", "quoteurl",
            "mimetype", "bytes", "width", "height", "filehash", "symlink", "sha256", "phash",
        ],
        "properties": {
            "url_d": {"type": "string", "description": "download as an attachment"},
            "url_i": {"type": "string", "description": "the bytes, inline"},
            "url_s": {"type": "string", "description": "short link, redirects to url_p"},
            "url_p": {"type": "string", "description": "preview page"},
            "filename": {"type": "string", "minLength": 1, "maxLength": 255},
            "size": {"type": "string", "description": "human readable, e.g. '33.00 kB'"},
            "time": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", "description": "UTC"},
            "type": {"type": "string", "enum": ["image", "audio", "video", "text", "binary"]},
            "quoteurl": {"type": "string", "description": "url_i, percent-encoded"},
            "mimetype": {"type": "string", "description": "sniffed from the content"},
            "bytes": {"type": "integer", "minimum": 1},
            "width": nullable_int,
            "height": nullable_int,
            "filehash": {"type": "string", "pattern": FILEHASH_RE.pattern},
            "symlink": {"type": "string", "pattern": r"^[0-9A-Za-z]+$"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "phash": {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{16}$"},
            "expires": {"type": "string", "nullable": True, "description": "UTC, when the paste goes away"},
            "delete_token": {"type": "string", "description": "only in the upload's answer"},
            "url_delete": {"type": "string", "description": "POST here to delete; only in the upload's answer"},
        },
    }
    return {
        "Paste": paste,
        "Similar": {
            "allOf": [
                _ref("Paste"),
                {
                    "type": "object",
                    "required": ["distance", "thumbnail"],
                    "properties": {
                        "distance": {"type": "integer", "minimum": 0, "maximum": 64},
                        "thumbnail": {"type": "string"},
                    },
                },
            ]
        },
        "Meta": {
            "allOf": [
                _ref("Paste"),
                {
                    "type": "object",
                    "properties": {
                        "similar": {
                            "type": "array",
                            "items": _ref("Similar"),
                            "description": "images only: near duplicates, nearest first",
                        }
                    },
                },
            ]
        },
        "Latest": {
            "type": "object",
            "required": ["limit", "offset", "files"],
            "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "offset": {"type": "integer", "minimum": 0},
                "files": {"type": "array", "items": _ref("Paste")},
            },
        },
        "Deleted": {
            "type": "object",
            "required": ["deleted"],
            "additionalProperties": False,
            "properties": {"deleted": {"type": "string", "pattern": FILEHASH_RE.pattern}},
        },
        "ShareXUploader": {
            "type": "object",
            "description": "A ShareX custom uploader (.sxcu); {json:key} names a key of the upload's JSON answer.",
            "required": [
                "Version", "Name", "DestinationType", "RequestMethod", "RequestURL", "Headers", "Body",
                "FileFormName", "URL", "ThumbnailURL", "DeletionURL", "ErrorMessage",
            ],
            "properties": {
                "Version": {"type": "string"},
                "Name": {"type": "string"},
                "DestinationType": {"type": "string"},
                "RequestMethod": {"type": "string", "enum": ["POST"]},
                "RequestURL": {"type": "string", "description": "POST / of this server"},
                "Headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "Body": {"type": "string", "enum": ["MultipartFormData"]},
                "FileFormName": {"type": "string", "enum": ["file"]},
                "URL": {"type": "string"},
                "ThumbnailURL": {"type": "string"},
                "DeletionURL": {"type": "string"},
                "ErrorMessage": {"type": "string"},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "unavailable"]},
                "checks": {
                    "type": "object",
                    "required": ["database", "store", "cache"],
                    "additionalProperties": {"type": "string", "enum": ["ok", "degraded", "failing"]},
                },
                "reasons": {"type": "array", "items": {"type": "string"}, "description": "why not ready"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "title", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "title": {"type": "string"},
                        "message": {"type": "string"},
                    },
                }
            },
        },
        "Side": {"type": "integer", "minimum": 0, "maximum": max_side},
    }


def _tus_paths() -> dict:
    """Resumable uploads: the tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload)."""
    version = _param("Tus-Resumable", "header", {"type": "string", "enum": ["1.0.0"]}, "the protocol version",
                     required=True)
    upload_id = _param("id", "path", {"type": "string", "minLength": 1, "maxLength": 64},
                       "the upload's id, from the creation's Location")
    offset_headers = {
        "Upload-Offset": {"schema": {"type": "integer", "minimum": 0}, "description": "bytes acknowledged"},
        "Upload-Expires": {"schema": {"type": "string"}, "description": "when an unfinished upload goes"},
        "X-Paste-Url": {"schema": {"type": "string"}, "description": "the preview link, once complete"},
        "X-Delete-Url": {"schema": {"type": "string"}},
        "X-Delete-Token": {"schema": {"type": "string"}, "description": "only on the request that completed it"},
    }
    body = {"content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    options = {
        "summary": "The protocol's version, extensions, largest size and checksum algorithms",
        "responses": {"204": {"description": "Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm"}},
    }
    return {
        "/files/": {
            "options": {**options, "operationId": "tusOptions"},
            "post": {
                "operationId": "tusCreate",
                "summary": "Start a resumable upload (with its first bytes, if sent)",
                "parameters": [
                    version,
                    _param("Upload-Length", "header", {"type": "integer", "minimum": 0}, "the size in bytes"),
                    _param("Upload-Defer-Length", "header", {"type": "integer", "enum": [1]},
                           "instead of Upload-Length: told by a later PATCH"),
                    _param("Upload-Metadata", "header", {"type": "string"},
                           "'key base64,…': filename, filetype, expires, w, h"),
                    _param("Upload-Concat", "header", {"type": "string"}, "'partial', or 'final;URL URL…'"),
                ],
                "requestBody": {"required": False, **body},
                "responses": {
                    "201": {"description": "created", "headers": {
                        "Location": {"schema": {"type": "string"}}, **offset_headers}},
                    **_errors(400, 412, 413, 415, 422, 429, 460, 503, 507),
                },
            },
        },
        "/files/{id}": {
            "options": {**options, "operationId": "tusUploadOptions", "parameters": [upload_id]},
            "head": {
                "operationId": "tusOffset",
                "summary": "How much of the upload the server has",
                "parameters": [upload_id, version],
                "responses": {
                    "200": {"description": "Upload-Offset, Upload-Length (or Upload-Defer-Length), Upload-Metadata",
                            "headers": offset_headers},
                    "404": {"description": "no such upload"},
                    "410": {"description": "expired"},
                    "412": {"description": "Tus-Resumable missing or another version"},
                    "503": {"description": "retry after Retry-After seconds"},
                },
            },
            "patch": {
                "operationId": "tusAppend",
                "summary": "Append bytes at Upload-Offset; the PATCH that completes the upload makes the paste",
                "parameters": [
                    upload_id, version,
                    _param("Upload-Offset", "header", {"type": "integer", "minimum": 0}, "where the body goes",
                           required=True),
                    _param("Upload-Checksum", "header", {"type": "string"}, "'sha1|md5|sha256 base64digest'"),
                    _param("Upload-Length", "header", {"type": "integer", "minimum": 0}, "a deferred length"),
                ],
                "requestBody": {"required": True, **body},
                "responses": {
                    "204": {"description": "appended", "headers": offset_headers},
                    **_errors(400, 403, 404, 409, 410, 412, 413, 415, 422, 423, 460, 503, 507),
                },
            },
            "delete": {
                "operationId": "tusTerminate",
                "summary": "Abandon the upload and remove its bytes",
                "parameters": [upload_id, version],
                "responses": {"204": {"description": "terminated"}, **_errors(404, 410, 412, 423, 503)},
            },
            "get": {
                "operationId": "tusResult",
                "summary": "The paste a complete upload became (as POST / answers, without the delete token)",
                "parameters": [upload_id],
                "responses": {
                    "200": _uploaded("the paste"),
                    **_errors(404, 409, 410, 415, 422, 503),
                },
            },
        },
    }


def _param(name: str, where: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


FILEHASH_PARAM = _param(
    "filehash", "path", {"type": "string", "pattern": FILEHASH_RE.pattern},
    "the paste's public id: 32 hex digits and the upload's extension",
)
W = _param("w", "query", _ref("Side"), "width; 0 or absent follows the aspect ratio")
H = _param("h", "query", _ref("Side"), "height; 0 or absent follows the aspect ratio")
EXPIRES_DESCRIPTION = (
    "how long until the paste goes away: seconds, or a duration like 90s, 30m, 1h, 7d, 2w "
    "(1 second up to the service's max_expiry); absent: kept"
)
# what core.utils.parse_expiry reads
EXPIRES_SCHEMA = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]{1,19}[smhdwSMHDW]?$"}]}
EXPIRES = _param("expires", "query", EXPIRES_SCHEMA, EXPIRES_DESCRIPTION)
SIG = _param("sig", "query", {"type": "string"}, "signature, needed when the service has a rendition_secret")
RANGE = _param("Range", "header", {"type": "string"}, "one byte range (bytes=first-last); others are ignored")

CONTENT_HEADERS = {
    "ETag": {"description": "the SHA-256 of the bytes, strong", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "inline or attachment, with the original filename",
                            "schema": {"type": "string"}},
    "X-Content-Type-Options": {"schema": {"type": "string", "enum": ["nosniff"]}},
    "Content-Security-Policy": {"schema": {"type": "string", "enum": ["sandbox"]}},
}


def _uploaded(description: str) -> dict:
    return {
        "description": description + "; JSON, or the short link alone for curl and Accept: text/plain",
        "content": {JSON: {"schema": _ref("Paste")}, TEXT: {"schema": {"type": "string"}}},
        "headers": {
            "X-Delete-Token": {"description": "the token that deletes this paste", "schema": {"type": "string"}},
            "X-Delete-Url": {"description": "POST here to delete this paste", "schema": {"type": "string"}},
        },
        "links": {
            "meta": {"operationId": "getMeta", "parameters": {"filehash": "$response.body#/filehash"}},
            "raw": {"operationId": "getRaw", "parameters": {"filehash": "$response.body#/filehash"}},
            "delete": {
                "operationId": "deletePaste",
                "parameters": {"filehash": "$response.body#/filehash", "token": "$response.body#/delete_token"},
            },
        },
    }


def _content(media: str | tuple[str, ...], description: str) -> dict:
    medias = (media,) if isinstance(media, str) else media
    return {"description": description, "headers": CONTENT_HEADERS,
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in medias}}


def document(request) -> dict:
    settings = request.pastefile.settings
    side = _ref("Side")
    paths = {
        "/": {
            "post": {
                "operationId": "uploadForm",
                "summary": "Upload a file as multipart/form-data, parsed as it streams in",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "w": side,
                                    "h": side,
                                    "expires": {**EXPIRES_SCHEMA, "description": EXPIRES_DESCRIPTION},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _uploaded("the paste (with w/h: the resized image)"),
                    "303": {
                        "description": "a browser's plain form post: see the preview page",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 413, 415, 422, 429, 503, 507),
                },
            }
        },
        "/{filename}": {
            "put": {
                "operationId": "uploadRaw",
                "summary": "Upload the raw body under this filename (curl -T)",
                "parameters": [
                    _param("filename", "path", {"type": "string", "minLength": 1}, "the original filename"),
                    W, H, EXPIRES,
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                "responses": {
                    "200": _uploaded("the paste"),
                    **_errors(400, 404, 413, 415, 422, 429, 503, 507),
                },
            }
        },
        "/j/{filehash}": {
            "get": {
                "operationId": "getMeta",
                "summary": "A paste's metadata; for an image also its near duplicates",
                "parameters": [FILEHASH_PARAM],
                "responses": {
                    "200": {"description": "the paste", "content": {JSON: {"schema": _ref("Meta")}}},
                    **_errors(400, 404, 503),
                },
            }
        },
        "/latest": {
            "get": {
                "operationId": "getLatest",
                "summary": "Recent uploads, newest first",
                "description": "Only when the operator sets pastefile.public_latest; otherwise 404.",
                "parameters": [
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                           "how many"),
                    _param("offset", "query", {"type": "integer", "minimum": 0, "maximum": INT_MAX, "default": 0},
                           "how many to skip"),
                ],
                "responses": {
                    "200": {"description": "a page of pastes", "content": {JSON: {"schema": _ref("Latest")}}},
                    **_errors(400, 404, 503),
                },
            }
        },
        "/i/{filehash}": {
            "get": {
                "operationId": "getRaw",
                "summary": "The bytes inline; with w, h, fit, format or q a stored rendition of an image",
                "parameters": [
                    FILEHASH_PARAM, W, H,
                    _param("fit", "query", {"type": "string", "enum": ["crop", "inside"], "default": "crop"},
                           "crop: exactly w x h from the middle; inside: the whole picture within w x h"),
                    _param("format", "query", {"type": "string", "enum": ["jpeg", "png", "webp"]},
                           "output format; default: the source's"),
                    _param("q", "query", {"type": "integer", "minimum": 1, "maximum": 100}, "quality"),
                    SIG, RANGE,
                ],
                "responses": {
                    "200": _content("*/*", "the bytes, with their sniffed type (active types as attachments)"),
                    "206": _content("*/*", "the range asked for"),
                    **_errors(400, 403, 404, 415, 416, 422, 503),
                },
            }
        },
        "/d/{filehash}": {
            "get": {
                "operationId": "getDownload",
                "summary": "The bytes as an attachment with the original filename",
                "parameters": [FILEHASH_PARAM, RANGE],
                "responses": {
                    # text keeps its type, with charset=utf-8 when its bytes are UTF-8
                    "200": _content(("application/octet-stream", "text/*"), "the bytes"),
                    "206": _content(("application/octet-stream", "text/*"), "the range asked for"),
                    **_errors(400, 404, 416, 503),
                },
            }
        },
        "/r/{filehash}": {
            "get": {
                "operationId": "resizeCopy",
                "summary": "A new paste holding a crop-resize of an image; JSON with Accept: application/json",
                "parameters": [FILEHASH_PARAM, W, H, SIG],
                "responses": {
                    "200": {
                        "description": "the resized paste: JSON, else its url_i as text",
                        "content": {JSON: {"schema": _ref("Paste")}, TEXT: {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 403, 404, 415, 422, 503),
                },
            }
        },
        "/s/{symlink}": {
            "get": {
                "operationId": "followShortLink",
                "summary": "Redirect to the preview page",
                "parameters": [_param("symlink", "path", {"type": "string", "pattern": "^[0-9A-Za-z]{6}([0-9A-Za-z]{5})?$"},
                                      "the short link's key")],
                "responses": {
                    "302": {"description": "the preview page", "headers": {"Location": {"schema": {"type": "string"}}}},
                    **_errors(400, 404, 503),
                },
            }
        },
        "/p/{filehash}": {
            "get": {
                "operationId": "getPreview",
                "summary": "The preview page",
                "parameters": [FILEHASH_PARAM],
                "responses": {
                    "200": {"description": "an HTML page", "content": {HTML: {"schema": {"type": "string"}}}},
                    **_errors(400, 404, 503),
                },
            }
        },
        "/x/{filehash}/{token}": {
            "post": {
                "operationId": "deletePaste",
                "summary": "Delete a paste with the token its upload answered",
                "parameters": [FILEHASH_PARAM, _param("token", "path", {"type": "string", "minLength": 1},
                                                      "the upload's delete_token")],
                "responses": {
                    "200": {
                        "description": "deleted",
                        "content": {JSON: {"schema": _ref("Deleted")}, TEXT: {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 403, 404, 503),
                },
            }
        },
        **_tus_paths(),
        "/healthz": {
            "get": {
                "operationId": "getHealth",
                "summary": "Liveness: the process answers (touches neither database nor cache)",
                "responses": {"200": {"description": "alive", "content": {JSON: {"schema": _ref("Health")}}}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "getReadiness",
                "summary": "Readiness: database at the schema's head revision, blob store writable, cache",
                "description": "A cache that does not answer is 'degraded': slower, still ready (200).",
                "responses": {
                    "200": {"description": "ready", "content": {JSON: {"schema": _ref("Readiness")}}},
                    "503": {
                        "description": "not ready: the reasons say which check fails",
                        "headers": _RETRY_AFTER,
                        "content": {JSON: {"schema": _ref("Readiness")}},
                    },
                },
            }
        },
        "/sharex.sxcu": {
            "get": {
                "operationId": "getShareXUploader",
                "summary": "A ShareX custom uploader for this server (import it in ShareX)",
                "description": "Uploads go to POST / as multipart (field file) with Accept: application/json; "
                "the links come from the answer's url_p, url_i and url_delete, errors from error.message.",
                "responses": {
                    "200": {
                        "description": "the uploader, as an attachment named after the host",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {JSON: {"schema": _ref("ShareXUploader")}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "getMetrics",
                "summary": "Counters in the Prometheus text format, summed over the server's workers",
                "description": "Requests by route and status class with their latency, uploads by outcome and "
                "their bytes, renditions rendered or served, cache lookups and errors, group-commit batches, "
                "blob store errors. Only addresses in pastefile.metrics_allow (default 127.0.0.1 and ::1) "
                "may read it; to any other it is 404.",
                "responses": {
                    "200": {
                        "description": "the text exposition format, version 0.0.4",
                        "content": {TEXT: {"schema": {"type": "string"}}},
                    },
                    **_errors(404),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenAPI",
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.0", "content": {JSON: {"schema": {"type": "object"}}}}},
            }
        },
    }
    responses = {
        "BadRequest": _error("a parameter, the body or the address cannot be used"),
        "Forbidden": _error("not allowed: an unsigned or unoffered resize, a wrong delete token"),
        "NotFound": _error("no such paste"),
        "TooLarge": _error(f"larger than {settings.max_upload_size} bytes"),
        "UnsupportedType": _error("a type not accepted here, or not an image for w/h"),
        "RangeNotSatisfiable": _error(
            "the range starts at or after the end", {"Content-Range": {"schema": {"type": "string"}}}
        ),
        "Unprocessable": _error("an image above the pixel limit"),
        "TooManyRequests": _error("too many uploads from this client; wait Retry-After seconds", _RETRY_AFTER),
        "Unavailable": _error("the database cannot be reached; retry after Retry-After seconds", _RETRY_AFTER),
        "InsufficientStorage": _error("no room for the file; nothing was stored"),
        "Conflict": _error("Upload-Offset is not the upload's offset, or the upload is not complete yet"),
        "Gone": _error("the resumable upload expired"),
        "PreconditionFailed": _error(
            "Tus-Resumable missing or another version", {"Tus-Version": {"schema": {"type": "string"}}}
        ),
        "Locked": _error("another request is appending to this upload"),
        "ChecksumMismatch": _error("the body does not match Upload-Checksum; nothing of it was kept"),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "pastefile",
            "version": "1",
            "description": "File and image hosting. Errors are JSON for API clients: "
            '{"error": {"status", "title", "message"}}.',
        },
        "servers": [{"url": request.application_url}],
        "paths": paths,
        "components": {"schemas": _schemas(settings.max_side), "responses": responses},
    }


@view_config(route_name="openapi", request_method="GET", renderer="json")
def openapi(request):
    request.response.cache_control = "no-cache"
    return document(request)
