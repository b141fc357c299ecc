"""pastefile's web front: a Pyramid app over :mod:`pastefile.core`."""
from pyramid.config import Configurator


def main(global_config, **settings):
    """The ``paste.app_factory`` behind ``pserve development.ini``."""
    with Configurator(settings=settings) as config:
        config.include(".services")
        config.include(".db")
        config.include("pyramid_jinja2")
        config.add_jinja2_renderer(".jinja2")
        config.include(".tweens")
        config.include(".routes")
        config.include(".views")
        config.scan(".views")
    return config.make_wsgi_app()
