"""Languages of the consumer pages (Flask-Babel). The goods cross China, Vietnam, Germany and the US, so the page a
QR code opens speaks the reader's language: chosen with the switcher (``?lang=de``, kept in a cookie), else from
``Accept-Language``. The staff pages and the JSON API stay in English: the API keeps stable codes and English
messages, and the consumer page renders its own sentences from those codes (web.consumer.wording).

Catalogues live in ``web/translations/<lang>/LC_MESSAGES/messages.po`` and their compiled ``.mo`` beside them
(tests/web/test_i18n.py checks every string is translated and every ``.mo`` is current)."""
from __future__ import annotations

from datetime import datetime, timezone

from babel import Locale
from babel.dates import format_skeleton, format_time
from flask import Flask, Response, request
from flask_babel import Babel, get_locale

__all__ = ["LANGUAGES", "init_app", "current_language", "country_name", "local_time", "local_date"]

# code -> name of the language in itself (what the switcher shows)
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español",
                             "zh": "中文", "vi": "Tiếng Việt"}
COOKIE = "lang"
_CONSUMER = {"consumer", None}  # blueprints that speak the reader's language (None: error pages, static)


def _chosen() -> str | None:
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    kept = request.cookies.get(COOKIE, "")
    return kept if kept in LANGUAGES else None


def _select() -> str:
    if request.blueprint not in _CONSUMER:
        return "en"
    return _chosen() or request.accept_languages.best_match(list(LANGUAGES)) or "en"


def _remember(response: Response) -> Response:
    asked = request.args.get("lang", "")
    if asked in LANGUAGES and request.blueprint in _CONSUMER:
        response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    if request.blueprint == "consumer":
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=_select, default_translation_directories="translations")
    app.after_request(_remember)

    @app.context_processor
    def _languages() -> dict[str, object]:
        return {"LANGUAGES": LANGUAGES, "current_language": current_language}


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def _locale() -> Locale:
    return get_locale() or Locale("en")


def country_name(code: str | None) -> str:
    """ISO 3166-1 alpha-2 -> the country's name in the reader's language (the code itself if unknown)."""
    if not code:
        return ""
    return _locale().territories.get(code.upper(), code)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def local_time(value: str | None) -> str:
    """RFC 3339 -> date and time in the reader's locale, in UTC (``24 Sept 2026, 10:03 UTC``)."""
    moment = _parse(value)
    if moment is None:
        return value or ""
    locale = _locale()
    moment = moment.astimezone(timezone.utc)
    day = format_skeleton("yMMMd", moment, locale=locale)
    clock = format_time(moment, "short", tzinfo=timezone.utc, locale=locale)
    joined = str(locale.datetime_formats.get("medium", "{1} {0}"))
    return joined.replace("{1}", day).replace("{0}", clock) + " UTC"


def local_date(value: str | None) -> str:
    moment = _parse(value)
    if moment is None:
        return value or ""
    return format_skeleton("yMMMd", moment.astimezone(timezone.utc), locale=_locale())
