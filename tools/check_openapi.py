#!/usr/bin/env python3
"""Checks openapi.yaml, and optionally recorded responses against it, with openapi-core.

Usage: python tools/check_openapi.py openapi.yaml [recordings.jsonl]

1. openapi-core loads the spec, which validates it as an OpenAPI 3.1 document
   (openapi-spec-validator), Schema Objects included.
2. Every response example in the spec must match its own schema (openapi-core's response data
   validator), so the published examples cannot drift from the schemas.
3. With a recordings file (JSON lines written by the end-to-end tests, one response each:
   {"method", "path", "status", "contentType", "headers", "body"}), openapi-core validates
   every recorded response against the operation it answers: a declared status code, a
   declared content type, the body against its schema (formats checked) and the declared
   response headers. This keeps the document honest: a test that sees an undeclared status
   or shape fails the build.

Operations and status codes that no recording exercised are listed for information only.
Exits 1 on any problem, including a recordings file that is missing or empty.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.validators import V31ResponseDataValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# The recordings carry the path the tests called; the host is irrelevant to matching.
HOST = "https://api.test"
Spec = dict[str, Any]


def declared(spec: Spec) -> Iterator[tuple[str, str, str]]:
    """Every (METHOD, path template, status) the spec declares."""
    for template, item in spec.get("paths", {}).items():
        for method in METHODS:
            for status in item.get(method, {}).get("responses", {}):
                yield method.upper(), template, str(status)


def resolve(spec: Spec, node: Any) -> Any:
    """A node with its local `$ref` (if any) followed."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target: Any = spec
        for token in node["$ref"].removeprefix("#/").split("/"):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def describe(error: Exception) -> str:
    """openapi-core's error, with the schema errors behind it."""
    causes = getattr(error.__cause__, "schema_errors", None) or []
    if causes:
        at = lambda e: "".join(f"/{p}" for p in e.absolute_path) or "/"  # noqa: E731
        return "body: " + "; ".join(f"at {at(e)}: {e.message[:200]}" for e in causes)[:800]
    return str(error)[:600]


def as_bytes(media: str, body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str) and not (media == "application/json" or media.endswith("+json")):
        return body.encode()
    return json.dumps(body).encode()


class Checker:
    """Validates responses of one spec; remembers which (method, path, status) were seen."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.openapi = OpenAPI.from_dict(spec)  # raises on an invalid document
        self.data_validator = V31ResponseDataValidator(self.openapi.spec)
        self.seen: set[tuple[str, str, str]] = set()
        # Literal paths first, so /sessions never matches a template meant for /sessions/{id}.
        templates = sorted(spec.get("paths", {}), key=lambda p: p.count("{"))
        self.routes = [(t, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"))
                       for t in templates]

    def note_seen(self, method: str, path: str, status: int) -> None:
        """Records which declared response a recording exercised (coverage, for information)."""
        template = next((t for t, rx in self.routes if rx.match(path)), None)
        operation = self.spec.get("paths", {}).get(template or "", {}).get(method.lower(), {})
        keys = {str(k) for k in operation.get("responses", {})}
        key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in keys), None)
        if template and key:
            self.seen.add((method.upper(), template, key))

    def check(self, method: str, path: str, status: int, content_type: str, headers: dict[str, str] | None,
              body: Any) -> list[str]:
        """The mismatches of one recorded response (empty when it conforms)."""
        path = path.split("?", 1)[0]
        self.note_seen(method, path, status)
        media = content_type.split(";", 1)[0].strip().lower()
        request = MockRequest(HOST, method, path)
        response = MockResponse(as_bytes(media, body), status_code=status, headers=headers,
                                content_type=media or "application/octet-stream")
        # Recordings without headers (older writers) get the body checked alone.
        if headers is None:
            errors = self.data_validator.iter_errors(request, response)
        else:
            errors = self.openapi.iter_response_errors(request, response)
        return [f"{method} {path} {status}: {describe(e)}" for e in errors]

    def check_examples(self) -> tuple[int, list[str]]:
        """(examples checked, mismatches): every response example against its own schema."""
        problems, count = [], 0
        for method, template, status in declared(self.spec):
            response = resolve(self.spec, self.spec["paths"][template][method.lower()]["responses"][status])
            path = re.sub(r"\{[^/]+?\}", "x", template)
            code = int(status) if status.isdigit() else 500
            for media, content in response.get("content", {}).items():
                examples = [content["example"]] if "example" in content else []
                examples += [resolve(self.spec, e).get("value") for e in content.get("examples", {}).values()]
                for example in examples:
                    count += 1
                    request = MockRequest(HOST, method, path)
                    mock = MockResponse(as_bytes(media, example), status_code=code, content_type=media)
                    problems += [f"example: {method} {template} {status}: {describe(e)}"
                                 for e in self.data_validator.iter_errors(request, mock)]
        return count, problems


def check_recordings(checker: Checker, path: Path) -> tuple[int, list[str]]:
    """(responses checked, mismatches) for a JSON-lines recordings file."""
    if not path.is_file():
        return 0, [f"{path}: recordings file not found"]
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    if not lines:
        return 0, [f"{path}: recordings file is empty (did the tests record anything?)"]
    problems = []
    for n, line in lines:
        try:
            r = json.loads(line)
            found = checker.check(r["method"], r["path"], int(r["status"]), r.get("contentType") or "",
                                  r.get("headers"), r.get("body"))
        except (ValueError, KeyError, TypeError) as e:
            found = [f"unreadable recording: {e!r}"]
        problems += [f"{path.name}:{n}: {p}" for p in found]
    return len(lines), problems


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    spec = yaml.safe_load(Path(argv[1]).read_text())
    if not str(spec.get("openapi", "")).startswith("3.1."):
        print(f"openapi: {argv[1]}: openapi version must be 3.1.x, found {spec.get('openapi')!r}")
        return 1
    try:
        checker = Checker(spec)
    except OpenAPIValidationError as e:  # the checks below assume a well-formed document
        print(f"spec: {str(e)[:600]}")
        print(f"openapi: {argv[1]} is not a valid OpenAPI 3.1 document")
        return 1
    examples, problems = checker.check_examples()
    print(f"openapi: {argv[1]} is a valid OpenAPI 3.1 document; {examples} response examples checked")
    checked = 0
    if len(argv) == 3:
        checked, found = check_recordings(checker, Path(argv[2]))
        problems += found
        for method, template, status in sorted(set(declared(spec)) - checker.seen):
            print(f"not exercised: {method} {template} {status}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    print(f"openapi: {checked} responses checked, {len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
