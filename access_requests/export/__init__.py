"""The export that answers an access request (GDPR art. 15): one ZIP with everything the data map
holds about one customer.

The ZIP holds `index.html` (readable offline, Norwegian and English: every table's rows, its first
page of them, with `pages/` holding the rest), `data.json` (every category, machine-readable), one
CSV per table named for what it holds (`invoices.csv`, `invoice-lines.csv`, `contact-users.csv`)
and `manifest.json` (size and SHA-256 of every other file). The work is split by job, and the
names are re-exported here:
- `tables`: what goes in (the data map's tables for one customer, the processors' tables, each
  value as text, the words describing each category in both languages);
- `readable`: the rows as a person reads them, in HTML pages per language;
- `archive`: writing the ZIP and the build's progress;
- `build`: the build's lifecycle (`enqueue_build`, `build_claim`, `export_build`,
  `export_build_failed`, `builds_reap`, `builds_requeue_waiting`, `builds_recover`).

Invariants:
- Every category of the data map is in data.json and index.html, with rows or without; a category
  with no table here says where its data lives instead. Nothing is exported that the data map, or a
  configured processor connector, does not name.
- Rows come only through `Table.rows_for_customer(customer_id)` or a connector given the same
  customer, so another customer's rows cannot slip in.
- Memory stays flat whatever the customer's size: rows are read `ROWS_PER_FETCH` at a time from a
  server-side cursor and go straight into the ZIP; the ZIP and data.json are temporary files.
- No long transaction: each database table is read in its own short one (its cursor streams), and
  progress and heartbeat are written between them, outside any, as conditional single-row UPDATEs
  the customer's page sees at once. When the row is no longer `building` (the reaper took the build
  back, the request went away), the build stops and deletes anything it saved. Only a row still
  `building` becomes `ready`.
- The stored name has a random part (`exports/<request id>-<token>.zip`). The hourly expiry deletes
  the file 7 days after it is ready, and sweeps any file under `exports/` that no request names
  once it is older than that (access_requests/expiry.py).
"""

from access_requests.export.archive import (
    COMPRESSION,
    COMPRESSION_LEVEL,
    BuildProgress,
    BuildStopped,
    WrittenFile,
)
from access_requests.export.build import (
    MAX_BUILD_ATTEMPTS,
    REQUEUE_AFTER,
    build_claim,
    builds_reap,
    builds_recover,
    builds_requeue_waiting,
    enqueue_build,
    export_build,
    export_build_failed,
)
from access_requests.export.tables import LANGUAGES, ROWS_PER_FETCH, csv_cell

__all__ = [
    "COMPRESSION",
    "COMPRESSION_LEVEL",
    "LANGUAGES",
    "MAX_BUILD_ATTEMPTS",
    "REQUEUE_AFTER",
    "ROWS_PER_FETCH",
    "BuildProgress",
    "BuildStopped",
    "WrittenFile",
    "build_claim",
    "builds_reap",
    "builds_recover",
    "builds_requeue_waiting",
    "csv_cell",
    "enqueue_build",
    "export_build",
    "export_build_failed",
]
