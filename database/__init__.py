"""Building blocks for rules the database enforces, shared by every app (not an app itself: no
models, and it imports none of the portal's apps)."""
