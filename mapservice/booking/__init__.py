"""The booking engine: rules, capacity by unit, race-safe writes, approvals, series and
alternatives. No Flask here: every function takes a SQLAlchemy session, the acting user and
plain values, adds and flushes, and leaves the commit to the caller's edge."""
