from pastefile.core.urls import PATTERNS, TUS, UPLOAD


def includeme(config):
    config.add_static_view("static", "pastefile.webapp:static", cache_max_age=3600)
    config.add_route("home", UPLOAD)
    # GET only: PUT /latest and PUT /openapi.json upload files of those names
    config.add_route("latest", "/latest", request_method=("GET", "HEAD"))
    config.add_route("openapi", "/openapi.json", request_method=("GET", "HEAD"))
    config.add_route("sharex", "/sharex.sxcu", request_method=("GET", "HEAD"))
    config.add_route("healthz", "/healthz", request_method=("GET", "HEAD"))
    config.add_route("readyz", "/readyz", request_method=("GET", "HEAD"))
    config.add_route("metrics", "/metrics", request_method=("GET", "HEAD"))
    # the links the core hands out (PasteInfo.url_*) are built from the same shapes
    config.add_route("preview", PATTERNS["preview"], request_method=("GET", "HEAD"))
    config.add_route("download", PATTERNS["download"])
    config.add_route("raw", PATTERNS["raw"])
    config.add_route("resize", PATTERNS["resize"])
    config.add_route("symlink", PATTERNS["symlink"])
    # DELETE on its own route: two views on one route would make every GET
    # try the DELETE view first and build the mismatch's exception
    config.add_route("meta_delete", PATTERNS["meta"], request_method="DELETE")
    config.add_route("meta", PATTERNS["meta"])
    config.add_route("delete", PATTERNS["delete"])
    # resumable uploads (tus): creation, then one URL per upload
    config.add_route("tus_create", TUS)
    config.add_route("tus_upload", TUS + "{id}")
    config.add_route("put", "/{filename}", request_method="PUT")
