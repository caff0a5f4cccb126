"""Check real answers against the service's own /openapi.json, with openapi-core (an
independent OpenAPI 3.1 validator), and count which documented answers were seen."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import httpx
import jsonschema
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SUCCESS = range(200, 300)


def _text(value: bytes, **parameters: str) -> str:
    return value.decode(parameters.get("charset", "utf-8"))


def _latin1(value: bytes, **_: str) -> str:
    return value.decode("latin-1")


class DocumentedAnswers:
    """Each answer checked: its status must be one the document lists for the operation, and
    its body and content type must validate against what the document says for that status.
    A path that names no operation must answer 404, a method the path does not take 405
    with `Allow`; both with the error body (``ErrorBody``)."""

    def __init__(self, document: dict[str, Any], *,
                 slashed: frozenset[str] = frozenset({"record_id"})) -> None:
        """``slashed``: path parameters that may hold a slash or be empty (FastAPI's ``{name:path}``,
        which the document writes ``{name}``)."""
        self.document = document
        # openapi-core reads media types it does not know as bytes; these are text (and the
        # binary ones, images and ZIP files, are checked as their bytes, one character each).
        binary = ("image/png", "image/jpeg", "image/webp", "application/zip", "application/x-zip-compressed",
                  "application/pdf", "application/octet-stream", "*/*")
        self.openapi = OpenAPI.from_dict(document, config=Config(extra_media_type_deserializers={
            "text/csv": _text, "image/svg+xml": _text, **dict.fromkeys(binary, _latin1)}))
        self.templates = [(re.compile("^" + re.sub(
            r"\\\{([^/]+?)\\\}",
            lambda m: f"(?P<{m[1]}>{'.*' if m[1] in slashed else '[^/]+'})", re.escape(t)) + "$"), t)
            for t in document["paths"]]
        self.seen: dict[tuple[str, str], set[int]] = defaultdict(set)
        self.error_schema = {"$ref": "#/components/schemas/ErrorBody",
                             "components": document["components"]}

    def template_of(self, path: str) -> tuple[str, dict[str, str]] | tuple[None, None]:
        matches = [(t, m.groupdict()) for pattern, t in self.templates if (m := pattern.match(path))]
        assert len(matches) <= 1, (path, matches)
        return matches[0] if matches else (None, None)

    def check(self, response: httpx.Response, *, request_valid: bool = True) -> httpx.Response:
        """``request_valid``: a successful answer's request must validate against the
        document too (False for a request the service answers in its body as wrong, as
        JSON-RPC does with a 200)."""
        request = response.request
        method, path = request.method, request.url.path
        template, path_params = self.template_of(path)
        status = response.status_code
        if template is None:
            assert status == 404, (method, path, status, response.text[:300])
            self._error_body(response)
            return response
        operations = self.document["paths"][template]
        if method.lower() not in operations:
            assert status == 405, (method, path, status, response.text[:300])
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert allowed == {m.upper() for m in operations}, (method, template, allowed)
            self._error_body(response)
            return response
        documented = operations[method.lower()]["responses"]
        assert str(status) in documented, (
            f"{method} {template} answered {status}, which the document does not list "
            f"(it lists {sorted(documented)}): {response.text[:300]}")
        content_type = response.headers.get("content-type", "")
        media = content_type.split(";")[0].strip()
        if status == 204 or not documented[str(status)].get("content"):
            assert not response.content, (method, template, status)
        else:
            assert media in documented[str(status)]["content"], (
                f"{method} {template} {status} answered {content_type}, the document lists "
                f"{sorted(documented[str(status)]['content'])}")
        fake_request = MockRequest(
            str(request.url.copy_with(path="/", query=None)).rstrip("/"), method.lower(), path,
            path_pattern=template, view_args=path_params, args=dict(request.url.params),
            headers=dict(request.headers),
            data=request.read(), content_type=request.headers.get("content-type", "application/json"))
        fake_response = MockResponse(response.content, status_code=status,
                                     headers=dict(response.headers), content_type=content_type)
        self.openapi.validate_response(fake_request, fake_response)
        if status in SUCCESS and request_valid:  # what the service took, the document must take too
            self.openapi.validate_request(fake_request)
        self.seen[(method, template)].add(status)
        return response

    def _error_body(self, response: httpx.Response) -> None:
        assert response.headers["content-type"].startswith("application/json"), response.headers
        jsonschema.validate(response.json(), self.error_schema, cls=jsonschema.Draft202012Validator)

    def unseen(self) -> dict[str, list[int]]:
        """Documented statuses of each operation that no checked answer had."""
        out = {}
        for template, operations in self.document["paths"].items():
            for method, operation in operations.items():
                missing = sorted(int(s) for s in operation["responses"]
                                 if int(s) not in self.seen[(method.upper(), template)])
                if missing:
                    out[f"{method.upper()} {template}"] = missing
        return out


class CheckedClient:
    """An httpx client whose every answer goes through DocumentedAnswers.check."""

    def __init__(self, http: httpx.Client, answers: DocumentedAnswers) -> None:
        self.http = http
        self.answers = answers

    def request(self, method: str, url: str, *, expect: int, request_valid: bool = True,
                **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, url, **kwargs)
        assert response.status_code == expect, (method, url, response.status_code, response.text[:500])
        return self.answers.check(response, request_valid=request_valid)

    def get(self, url: str, *, expect: int = 200, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, expect=expect, **kwargs)

    def post(self, url: str, *, expect: int = 200, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, expect=expect, **kwargs)

    def delete(self, url: str, *, expect: int = 204, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, expect=expect, **kwargs)
