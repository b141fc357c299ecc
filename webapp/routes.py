def includeme(config):
    config.add_static_view("static", "pastefile.webapp:static", cache_max_age=3600)
    config.add_route("home", "/")
    # GET only: PUT /latest and PUT /openapi.json upload files of those names
    config.add_route("latest", "/latest", request_method=("GET", "HEAD"))
    config.add_route("openapi", "/openapi.json", request_method=("GET", "HEAD"))
    config.add_route("preview", "/p/{filehash}", request_method=("GET", "HEAD"))
    config.add_route("download", "/d/{filehash}")
    config.add_route("raw", "/i/{filehash}")
    config.add_route("resize", "/r/{filehash}")
    config.add_route("symlink", "/s/{symlink}")
    # DELETE on its own route: two views on one route would make every GET
    # try the DELETE view first and build the mismatch's exception
    config.add_route("meta_delete", "/j/{filehash}", request_method="DELETE")
    config.add_route("meta", "/j/{filehash}")
    config.add_route("delete", "/x/{filehash}/{token}")
    config.add_route("put", "/{filename}", request_method="PUT")
