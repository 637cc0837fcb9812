"""The page benchmark (benchmarks/web.py) at a tiny scale, so it cannot rot unnoticed: it builds its
own database, starts gunicorn with production settings, checks that each page answers what it should
(the signed-in customer's page, not a redirect to sign-in), drives each with wrk for a second and
prints every figure with its anchor and ratio. Timing is printed, never asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks import web as bench

ROOT = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/privacy/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    19.68ms   13.47ms 204.14ms   91.90%
    Req/Sec   433.42     92.47   580.00     75.00%
  Latency Distribution
     50%   16.50ms
     75%   20.91ms
     90%   28.43ms
     99%    1.02s{trailing_space}
  8640 requests in 10.01s, 128.64MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:    863.18
Transfer/sec:     12.85MB
""".format(trailing_space=" ")  # wrk pads seconds with a space


def test_wrk_figures_are_read_with_their_units_and_errors() -> None:
    result = bench.parse_wrk(WRK_OUTPUT)
    assert result == bench.Result(
        requests_per_second=863.18, p50_ms=16.5, p99_ms=1020.0, requests=8640, errors=5
    )


def test_the_bench_database_sits_beside_the_configured_one() -> None:
    assert bench.bench_database_url("postgres://postgres@127.0.0.1:5432/portal") == (
        "postgres://postgres@127.0.0.1:5432/portal_bench_web",
        "portal_bench_web",
    )


def test_a_tiny_run_measures_every_page_against_its_anchor() -> None:
    arguments = ["--duration", "1", "--warm-up", "0", "--connections", "2", "--high-connections", "4"]
    result = subprocess.run(
        [sys.executable, "benchmarks/web.py", *arguments],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(index for index, line in enumerate(lines) if line.strip().startswith("page "))
    rows = lines[header + 1 : header + 1 + len(bench.PAGES)]  # one row per page, in PAGES order
    for page, line in zip(bench.PAGES, rows, strict=True):
        assert line.strip().startswith(page.title), line
        if page.anchor:
            assert f"x {page.anchor}" in line, line
    assert "/healthz costs about" in result.stdout
