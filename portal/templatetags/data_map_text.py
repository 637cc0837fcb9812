"""`{% category_text category "heading" %}` and `{% category_text category "about" %}`: the data
map's words about a category (name and description; purpose, legal basis, storage, processors and
retention), as the privacy page and the customer's page show them.

They are the same for every visitor in a language, so each part is rendered once per language and
process and kept: resolving some twenty lazy translations per category on every request cost more
than the rest of either page. The key holds the category's retention promise and rule, the only
words that follow the configured periods, so a changed period renders anew.
"""

from __future__ import annotations

import functools

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from retention.data_map import Category, categories

register = template.Library()

PARTS = {"heading": "portal/_category_heading.html", "about": "portal/_category_about.html"}


@functools.lru_cache(maxsize=256)
def _rendered(language: str, key: str, retention: str, rule: str, part: str) -> SafeString:
    category = next(candidate for candidate in categories() if candidate.key == key)
    return SafeString(render_to_string(PARTS[part], {"category": category}))


@register.simple_tag
def category_text(category: Category, part: str) -> SafeString:
    if part not in PARTS:
        raise template.TemplateSyntaxError(f"category_text knows {', '.join(PARTS)}, not {part!r}")
    return _rendered(get_language() or "", category.key, str(category.retention), category.rule, part)
