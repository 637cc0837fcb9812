"""axe-core (the copy bundled in axe-playwright-python, nothing fetched) over the page a browser
test has open: the serious and critical violations, each as "rule: the first offending element",
so a failing assertion says what to fix."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

SERIOUS = ("serious", "critical")


def serious_violations(page: Any) -> list[str]:
    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") in SERIOUS:
            nodes = violation.get("nodes") or [{}]
            found.append(f"{violation['id']} ({violation['impact']}): {nodes[0].get('html', '')[:160]}")
    return found
