"""Operations: the work across models that routes, the CLI and tests call.

They take a SQLAlchemy session, the acting user and plain values; they add and flush but never
commit (the caller's edge owns the transaction), and raise the domain errors of
``mapservice.core.errors``. No Flask here.
"""
