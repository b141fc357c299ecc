"""View callables, registered by ``config.scan()``."""


def includeme(config):
    # error views render templates/error.jinja2 for browsers, JSON for clients
    config.add_notfound_view(".errors.not_found", append_slash=False)
