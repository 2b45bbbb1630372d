"""``mapservice token create`` and ``token revoke``: personal access tokens for the API."""

from __future__ import annotations

import click

from mapservice.cli.common import get_user, registrar, transaction

token_group = click.Group("token", help="Personal access tokens for the JSON API.")


@token_group.command("create", help="Create a token; it is printed once and stored hashed.")
@click.option("--user", "username", required=True)
@click.option("--scopes", default="read", help="Comma-separated: read,book,manage.")
@click.option("--name", default="cli")
def token_create(username: str, scopes: str, name: str) -> None:
    from mapservice.operations.tokens import create_token, parse_scopes

    with transaction() as session:
        user = get_user(session, username)
        _token, secret = create_token(session, None, user, parse_scopes(scopes), name)
    click.echo(secret)


@token_group.command("revoke", help="Revoke every token of a user whose secret starts with PREFIX.")
@click.option("--user", "username", required=True)
@click.option("--prefix", required=True)
def token_revoke(username: str, prefix: str) -> None:
    from mapservice.operations.revocation import revoke_tokens

    with transaction() as session:
        hits = revoke_tokens(session, None, get_user(session, username), prefix=prefix)
    click.echo(f"revoked {len(hits)} token(s)")


init_app = registrar(token_group)
