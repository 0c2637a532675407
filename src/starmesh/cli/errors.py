"""What a command that failed at start-up prints: one clear line instead of a traceback.

``starmesh`` catches, once for every command (``cli.app.main``), the errors a user can fix:
starmesh's own (they say what to do), a bus that cannot be reached, a server that is not
Redis, a ``STARMESH_*`` variable that does not validate. Anything else is a bug and keeps its
traceback; ``starmesh --debug ...`` shows the traceback of these too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from pydantic import ValidationError
from redis.exceptions import InvalidResponse, RedisError

from starmesh.bus.redis.transport import redact_url
from starmesh.core.errors import StarmeshError

__all__ = ["explain"]

_URL_OPTIONS = ("--url", "--marketdata-url")
_URL_VARIABLES = ("STARMESH_BUS_URL", "STARMESH_MARKETDATA_URL")


def explain(error: BaseException, argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The line to print for ``error``, or None when it is not one a user can fix."""
    chain = list(_chain(error))
    where = _bus_urls(argv, environ)
    for cause in chain:
        if isinstance(cause, InvalidResponse):  # e.g. an HTTP server answering "<html>"
            return (
                f"the server at {where} did not answer as Redis ({cause}); is that the "
                "address and port of a redis-server?"
            )
    if isinstance(error, ValidationError) and error.title == "Settings":
        return "invalid setting: " + "; ".join(_problem(e["loc"], e["msg"]) for e in error.errors())
    for cause in chain:
        if isinstance(cause, StarmeshError):
            return str(cause)
    for cause in chain:
        if isinstance(cause, RedisError):
            return f"Redis at {where}: {cause}"
        if isinstance(cause, ConnectionError):
            return f"cannot connect ({where}): {cause}"
    return None


def _problem(location: tuple[int | str, ...], message: str) -> str:
    """``STARMESH_CACHE_TTL_S (quotes): Input should be ...``: the variable, then where in it."""
    inside = ".".join(str(part) for part in location[1:] if part != "[key]")
    return f"STARMESH_{str(location[0]).upper()}{f' ({inside})' if inside else ''}: {message}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, what it was raised from or during, and the members of a group, once each."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _bus_urls(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The bus URLs the command was given (options first, then the environment), redacted."""
    urls: list[str] = []
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in _URL_OPTIONS:
            if not equals and index + 1 < len(argv):
                value = argv[index + 1]
            urls.append(value)
    if not urls:
        urls = [environ[name] for name in _URL_VARIABLES if environ.get(name)]
    shown = list(dict.fromkeys(redact_url(url) for url in urls if url))
    return " or ".join(shown) if shown else "the bus URL"
