"""pastefile's web front: a Pyramid app over :mod:`pastefile.core`."""
from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request

from .services import service_of


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
    ``pastefile.environment`` is ``production``, and
    :class:`pastefile.core.health.SchemaBehind` for a database whose schema
    is older than the code while ``pastefile.auto_migrate`` is off.
    """
    with Configurator(settings=settings) as config:
        config.set_locale_negotiator(default_locale_only)
        config.include(".services")
        _refuse_a_schema_behind(config)
        config.include(".db")
        config.include("pyramid_jinja2")
        config.add_jinja2_renderer(".jinja2")
        config.include(".tweens")
        config.include(".metrics")
        config.include(".routes")
        config.include(".views")
        config.scan(".views")
        config.include(".fastread")
        _extensions_on_the_request_class(config)
    return config.make_wsgi_app()


def _refuse_a_schema_behind(config) -> None:
    """Stop here, with the fix in the message, rather than answer 500s on
    the first query that needs a newer column (auto_migrate has run by now)."""
    service = service_of(config.registry)
    try:
        service.require_current_schema()
    except Exception:
        service.close()
        raise


def _extensions_on_the_request_class(config) -> None:
    """``add_request_method`` properties (``request.pastefile``,
    ``request.dbsession``, ``request.tm`` ...) as attributes of one request
    class, made once here.

    Pyramid otherwise applies them to every request by making a new class
    for it, which cost more than the rest of routing a cached read.  The
    registered extensions are emptied so nothing applies them twice.
    """
    config.commit()
    registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None or not (extensions.descriptors or extensions.methods):
        return
    base = registry.queryUtility(IRequestFactory, default=Request)
    attrs = {"__module__": base.__module__, **extensions.descriptors, **extensions.methods}
    request_class = type(base.__name__, (base,), attrs)
    empty = type(extensions)()
    registry.registerUtility(empty, IRequestExtensions)
    config.set_request_factory(request_class)
