"""The committee's view: utilization, sharing, coverage, charts, maps and exports.

Pure: nothing here imports Flask. Loading takes a SQLAlchemy session and a scope; everything
after that works on pandas DataFrames and returns plain values, so the dashboard, the CLI, a
test or a notebook call the same functions. The definitions are in ``docs/stats.md``.
"""
