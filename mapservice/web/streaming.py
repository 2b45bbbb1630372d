"""Downloads sent in pieces: exports whose body is produced while it is sent, so a worker
never holds a whole file of a city's rows (CSV in chunks of rows, XLSX from a temporary file).

Everything that can refuse the request (a bad parameter, a missing right) is checked before
the response starts: once the first piece is out the status can no longer change. A body that
reads the database after the view has returned uses a session of its own
(:func:`with_read_session`): the request's session is committed and closed when the view
returns (:mod:`mapservice.web.database`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from flask import Response
from sqlalchemy.orm import Session

from mapservice.core.i18n import current_locale, use_locale
from mapservice.core.memory import release_free_heap
from mapservice.web.database import read_session


def _in_locale(chunks: Iterable[bytes], locale: str) -> Iterator[bytes]:
    """The pieces, each produced in the request's language (the WSGI server iterates the
    body after the request's context is gone)."""
    it = iter(chunks)
    try:
        while True:
            with use_locale(locale):
                try:
                    block = next(it)
                except StopIteration:
                    return
            if block:
                yield block
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def disposition(filename: str) -> str:
    """``Content-Disposition`` of an attachment: a plain name quoted, any other (a Chinese
    activity title) percent-encoded as RFC 6266 says."""
    if filename.isascii() and filename.isprintable() and not any(c in filename for c in '"\\'):
        return f'attachment; filename="{filename}"'
    return f"attachment; filename*=UTF-8''{quote(filename)}"


def download(
    chunks: Iterable[bytes],
    mimetype: str,
    filename: str | None,
    *,
    cache: str = "private, max-age=60",
    on_close: Iterable[Callable[[], object]] = (),
) -> Response:
    """A streamed response of ``chunks`` (an attachment named ``filename`` when given).
    ``on_close`` runs when the server is done with the response, sent whole or not (a
    client that went away): a session closed, a temporary file removed. Last, the heap's
    free pages go back to the system (:func:`release_free_heap`): a download is an export of
    a city's rows, and what producing it freed would otherwise stay in the worker and add to
    what the next heavy page leaves."""
    response = Response(_in_locale(chunks, current_locale()), mimetype=mimetype)
    if filename:
        response.headers["Content-Disposition"] = disposition(filename)
    response.headers["Cache-Control"] = cache
    for f in on_close:
        response.call_on_close(f)
    response.call_on_close(release_free_heap)
    return response


def with_read_session(
    produce: Callable[[Session], Iterable[bytes]],
) -> tuple[Iterator[bytes], Session]:
    """``produce``'s pieces read with a read-only session of their own, opened now and
    closed when they are all produced; the session is returned as well, for the response to
    close should its body never be read (``download(..., on_close=[session.close])``)."""
    session = read_session()

    def body() -> Iterator[bytes]:
        try:
            yield from produce(session)
        finally:
            session.close()

    return body(), session


def file_download(path: Path, mimetype: str, filename: str) -> Response:
    """A written temporary file sent in pieces, removed once sent (or once the server is
    done with the response, sent whole or not)."""
    from mapservice.stats.export import file_chunks

    return download(
        file_chunks(path), mimetype, filename, on_close=[lambda: path.unlink(missing_ok=True)]
    )
