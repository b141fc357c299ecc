"""The smallest Pyramid app: what the framework alone costs.

``POST /`` and ``PUT /{name}`` read ``request.body`` and answer its size as
JSON; ``GET /hello`` answers hello world.  No tweens, no transaction manager,
no templates.
"""
from __future__ import annotations

from pyramid.config import Configurator
from pyramid.response import Response


def body_view(request):
    return Response(json_body={"bytes": len(request.body)})


def hello_view(request):
    return Response("Hello, World!", content_type="text/plain", charset="utf-8")


def make_app(global_config, **settings):
    """``use = call:benchmarks.load.pyramid_min:make_app``"""
    with Configurator(settings=settings) as config:
        config.add_route("hello", "/hello")
        config.add_route("body", "/")
        config.add_route("put", "/{name}")
        config.add_view(hello_view, route_name="hello", request_method="GET")
        config.add_view(body_view, route_name="body")
        config.add_view(body_view, route_name="put", request_method="PUT")
    return config.make_wsgi_app()
