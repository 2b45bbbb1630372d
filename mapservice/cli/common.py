"""What every command shares: one transaction per command, a one-line refusal, the committee
chosen with ``--committee`` and the console's stand-in actor."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from mapservice.core import i18n
from mapservice.core.errors import DomainError, ImportRejected, ValidationFailed
from mapservice.core.vocab import Role
from mapservice.models import Committee, User
from mapservice.web.database import new_session


def fail(text: str) -> NoReturn:
    raise click.ClickException(text.replace("\n", " "))


def use_console_language() -> None:
    i18n.set_locale(os.environ.get("MAPSERVICE_LANGUAGE", "zh_CN"))


@contextmanager
def transaction() -> Iterator[Session]:
    """One session, committed on success, rolled back on any error (domain errors become a
    one-line message and exit status 1)."""
    use_console_language()
    session = new_session()
    try:
        yield session
        session.commit()
    except ValidationFailed as exc:
        session.rollback()
        details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        fail(f"{exc.message} {details}".strip())
    except ImportRejected as exc:
        session.rollback()
        for line in exc.errors:
            click.echo(line, err=True)
        fail(i18n._("Nothing was imported: %(n)s problem(s).", n=len(exc.errors)))
    except DomainError as exc:
        session.rollback()
        fail(exc.message)
    finally:
        session.close()


def get_committee(session: Session, slug: str | None) -> Committee:
    stmt = select(Committee).order_by(Committee.id)
    committee = session.scalars(
        stmt.where(Committee.slug == slug) if slug else stmt.limit(1)
    ).first()
    if committee is None:
        fail(
            f"no committee {slug!r}"
            if slug
            else "no committee yet: run 'mapservice seed demo' or 'mapservice committee create'"
        )
    return committee


def get_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        fail(f"no user {username!r}")
    return user


def cli_actor(committee: Committee) -> User:
    """A transient committee admin standing for the person at the console (audited as 'cli')."""
    return User(
        id=None,
        committee_id=committee.id,
        username="cli",
        role=Role.COMMITTEE_ADMIN.value,
        active=True,
    )


def write_output(output: str, data: bytes) -> None:
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")


def password(value: str | None) -> str:
    if value:
        return value
    env = os.environ.get("MAPSERVICE_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        fail("no password: pass --password, set MAPSERVICE_PASSWORD or run interactively")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def config(name: str) -> Any:
    return current_app.config[name]


committee_option: Callable[[Any], Any] = click.option(
    "--committee", "committee_slug", default=None, help="Committee slug (default: the first one)."
)


def registrar(*commands: click.Command) -> Callable[[Flask], None]:
    """A subsystem's ``init_app``: adds its commands to the app's ``mapservice`` CLI."""

    def init_app(app: Flask) -> None:
        for command in commands:
            app.cli.add_command(command)

    return init_app
