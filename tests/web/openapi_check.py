"""Check real responses against the OpenAPI document the server publishes (JSON Schema 2020-12)."""
from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:waybill:openapi"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class OpenApi:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(BASE, resource)
        self.checked: set[tuple[str, str, str]] = set()

    def _response_pointer(self, method: str, template: str, status: int) -> str:
        op = self.doc["paths"][template][method.lower()]
        responses = op["responses"]
        assert str(status) in responses, f"{method.upper()} {template} does not document status {status}"
        response = responses[str(status)]
        if "$ref" in response:
            return response["$ref"]
        return "#/" + "/".join(_escape(t) for t in ("paths", template, method.lower(), "responses", str(status)))

    def _resolve(self, pointer: str) -> Any:
        node: Any = self.doc
        for token in pointer.lstrip("#/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node

    def check(self, response: Any, template: str, method: str = "get") -> Any:
        """Validate ``response`` (a Flask test response or a requests.Response) against the document."""
        status = response.status_code
        mimetype = response.mimetype if hasattr(response, "mimetype") else \
            response.headers.get("Content-Type", "").split(";")[0].strip()
        pointer = self._response_pointer(method, template, status)
        content = self._resolve(pointer)["content"]
        assert mimetype in content, f"{method.upper()} {template} {status}: {mimetype} is not documented"
        schema_pointer = f"{pointer}/content/{_escape(mimetype)}/schema"
        if mimetype == "application/json" or mimetype.endswith("+json"):
            body = response.get_json() if hasattr(response, "get_json") else response.json()
        else:
            body = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
        validator = Draft202012Validator({"$ref": BASE + schema_pointer}, registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method.upper()} {template} {status}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5])
        self.checked.add((method.lower(), template, str(status)))
        return body
