"""``/healthz`` (the process answers) and ``/readyz`` (it can serve now),
for load balancers and orchestrators.

Liveness touches nothing outside the process, so a database outage never
gets workers restarted; readiness asks the core (``service.readiness()``)
and only formats its answer.
"""
from __future__ import annotations

from pyramid.view import view_config

from ..responses import json_response

# how soon a balancer should ask again when not ready
RETRY_AFTER = "5"


@view_config(route_name="healthz")
def healthz(request):
    response = json_response({"status": "ok"})
    response.cache_control = "no-store"
    return response


@view_config(route_name="readyz")
def readyz(request):
    readiness = request.pastefile.readiness()
    response = json_response(readiness.to_json())
    response.cache_control = "no-store"
    if not readiness.ready:
        response.status = 503
        response.headers["Retry-After"] = RETRY_AFTER
    return response
