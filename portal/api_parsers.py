"""Request bodies the API reads: small, and JSON no deeper than any of its requests needs.

DRF's own parsers read the whole body, however large (Django's DATA_UPLOAD_MAX_MEMORY_SIZE guards
`request.body` and `request.POST`, which DRF bypasses by reading the stream), and Python's `json`
recurses once per level of nesting, so a body of a few hundred kilobytes of `[` ends in a
RecursionError, a 500. These parsers (the API's defaults, REST_FRAMEWORK in settings.py) refuse
both with 400 before parsing.

Invariants:
- No parser reads more than `max_bytes` of a body (one byte more, to know it is too long).
- JSON is parsed only after a linear scan has found it no deeper than `max_depth`, so the
  decoder's recursion stays far from Python's limit.
- Every refusal is DRF's ParseError: 400 with a reason, as for malformed JSON.

Written here rather than taken from a library: Python's `json` takes no depth limit, and a parser
with one (orjson's is a fixed 1,024 levels) would be a new compiled dependency for one check that
is a dozen lines.
"""

from __future__ import annotations

import io
import re
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

# The API's largest request is a reason of at most 2,000 characters (access_requests.serializers).
MAX_BODY_BYTES = 64 * 1024
# Its requests are flat objects; a little room for a future one with a list of objects in it.
MAX_JSON_DEPTH = 8

# A JSON string (no catastrophic backtracking: the two alternatives never match the same text).
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKETS = re.compile(r"[\[\]{}]")


def read_bounded(stream: IO[bytes], parser_context: dict[str, Any] | None, *, max_bytes: int) -> bytes:
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ParseError(f"The request body is larger than {max_bytes} bytes.")
    body = stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ParseError(f"The request body is larger than {max_bytes} bytes.")
    return body


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text`, brackets inside strings not counted (an
    unterminated string counts its brackets: such a body is malformed anyway)."""
    depth = deepest = 0
    for bracket in BRACKETS.findall(JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class BoundedJSONParser(parsers.JSONParser):
    max_bytes = MAX_BODY_BYTES
    max_depth = MAX_JSON_DEPTH

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = read_bounded(stream, parser_context, max_bytes=self.max_bytes)
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError) as undecodable:
            raise ParseError(f"JSON parse error - {undecodable}") from undecodable
        if json_depth(text) > self.max_depth:
            raise ParseError(f"JSON nested more than {self.max_depth} levels deep.")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as malformed:
            raise ParseError(f"JSON parse error - {malformed}") from malformed


class BoundedFormParser(parsers.FormParser):
    max_bytes = MAX_BODY_BYTES

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body = read_bounded(stream, parser_context, max_bytes=self.max_bytes)
        return super().parse(io.BytesIO(body), media_type, parser_context)
