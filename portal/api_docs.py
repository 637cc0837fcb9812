"""A plain page describing the API, rendered on the server from the OpenAPI schema.

Swagger UI and Redoc load their scripts from a CDN unless drf-spectacular-sidecar is installed,
and this portal neither reaches the internet nor allows third-party scripts: so the docs page is
an HTML list of operations, with a link to the machine-readable schema at /api/schema/.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": [
                        {
                            "name": parameter.get("name"),
                            "in": parameter.get("in"),
                            "required": parameter.get("required", False),
                            "description": parameter.get("description", ""),
                        }
                        for parameter in operation.get("parameters", [])
                    ],
                    "responses": [
                        {"status": code, "description": response.get("description", "")}
                        for code, response in sorted(operation.get("responses", {}).items())
                    ],
                }
            )
    return found


def api_docs(request: HttpRequest) -> HttpResponse:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return render(
        request,
        "portal/api_docs.html",
        {"info": schema.get("info", {}), "operations": operations(schema)},
    )
