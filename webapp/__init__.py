"""pastefile's web front: a Pyramid app over :mod:`pastefile.core`."""
from pyramid.config import Configurator


def default_locale_only(request):
    """The locale negotiator: always the default locale (the app has one).

    Pyramid's own negotiator reads ``request.params``, which parses a form
    body with WebOb's buffering parser the first time anything asks for the
    locale (the debug toolbar does on every request): an upload read twice,
    and a multipart body without a boundary raised outside the error views.
    """
    return None


def main(global_config, **settings):
    """The ``paste.app_factory`` behind ``pserve development.ini``.

    Raises :class:`pastefile.core.SettingsError` for a setting that cannot
    be used, among them a placeholder ``symlink_key`` when
    ``pastefile.environment`` is ``production``.
    """
    with Configurator(settings=settings) as config:
        config.set_locale_negotiator(default_locale_only)
        config.include(".services")
        config.include(".db")
        config.include("pyramid_jinja2")
        config.add_jinja2_renderer(".jinja2")
        config.include(".tweens")
        config.include(".routes")
        config.include(".views")
        config.scan(".views")
    return config.make_wsgi_app()
