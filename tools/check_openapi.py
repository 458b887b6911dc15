#!/usr/bin/env python3
"""Checks openapi.yaml, and optionally recorded responses against it.

Usage: python tools/check_openapi.py openapi.yaml [recordings.jsonl]

1. The spec must be a valid OpenAPI 3.1 document (openapi-spec-validator), and every
   response example in it must match its own schema, so the published examples cannot
   drift from the schemas.
2. With a recordings file (JSON lines written by the end-to-end tests, one response each:
   {"method", "path", "status", "contentType", "body"}), every recorded response must
   use a status code the spec declares for that operation and a declared content type, and
   a JSON body must match the declared schema (JSON Schema 2020-12, formats checked,
   `$ref`s resolved against the whole spec). This is what keeps the document honest: a
   test that sees an undeclared status or shape fails the build.

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
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:openapi-spec"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
Spec = dict[str, Any]


def escape(token: str) -> str:
    """One JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def resolve(spec: Spec, pointer: str) -> tuple[Any, str]:
    """The node at `pointer`, following OpenAPI `$ref`s; returns it and its final pointer."""
    node: Any = spec
    for token in pointer.lstrip("/").split("/") if pointer else []:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported: {ref}")
        return resolve(spec, ref[1:])
    return node, pointer


class Checker:
    """Validates responses of one spec; remembers which (method, path, status) were seen."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        resource = DRAFT202012.create_resource(spec)
        self.registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self.seen: set[tuple[str, str, str]] = set()
        # Literal paths first, so /sessions never matches a template meant for /sessions/{id}.
        templates = sorted(spec.get("paths", {}), key=lambda p: p.count("{"))
        self.routes = [(t, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"))
                       for t in templates]

    def declared(self) -> Iterator[tuple[str, str, str]]:
        """Every (METHOD, path template, status) the spec declares."""
        for template, item in self.spec.get("paths", {}).items():
            for method in METHODS:
                for status in item.get(method, {}).get("responses", {}):
                    yield method.upper(), template, str(status)

    def check(self, method: str, path: str, status: int, content_type: str, body: Any) -> list[str]:
        """The mismatches of one response (empty when it conforms)."""
        path = path.split("?", 1)[0]
        template = next((t for t, rx in self.routes if rx.match(path)), None)
        if template is None:
            return [f"{method} {path}: no such path in the spec"]
        op_pointer = f"/paths/{escape(template)}/{method.lower()}"
        operation = self.spec["paths"][template].get(method.lower())
        if operation is None:
            return [f"{method} {template}: method not declared"]
        responses = operation.get("responses", {})
        keys = {str(k): k for k in responses}
        key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in keys), None)
        if key is None:
            return [f"{method} {template}: status {status} not declared (declared: {', '.join(sorted(keys))})"]
        self.seen.add((method.upper(), template, key))
        response, pointer = resolve(self.spec, f"{op_pointer}/responses/{escape(key)}")
        content = response.get("content", {})
        media = content_type.split(";", 1)[0].strip().lower()
        if not content:
            return [] if body in (None, "") else [f"{method} {template} {status}: body not declared"]
        if media not in content:
            return [f"{method} {template} {status}: content type {media or '(none)'!r} not declared "
                    f"(declared: {', '.join(content)})"]
        if not (media == "application/json" or media.endswith("+json")):
            return []  # text/plain and friends: the declared status and media type are enough
        schema_pointer = f"{pointer}/content/{escape(media)}/schema"
        validator = Draft202012Validator({"$ref": f"{SPEC_URI}#{schema_pointer}"},
                                         registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        problems = []
        for error in validator.iter_errors(body):
            message = error.message
            if error.context:
                message += f" (closest: {best_match(error.context).message})"
            problems.append(f"{method} {template} {status}: body at {error.json_path}: {message[:300]}")
        return problems

    def check_examples(self) -> tuple[int, list[str]]:
        """(examples checked, mismatches): every response example, checked like a recording."""
        problems, count = [], 0
        for method, template, status in self.declared():
            pointer = f"/paths/{escape(template)}/{method.lower()}/responses/{escape(status)}"
            response, pointer = resolve(self.spec, pointer)
            for media, content in response.get("content", {}).items():
                examples = [content["example"]] if "example" in content else []
                examples += [resolve(self.spec, f"{pointer}/content/{escape(media)}/examples/{escape(name)}")[0]
                             .get("value") for name in content.get("examples", {})]
                code = int(status) if status.isdigit() else 500
                count += len(examples)
                for example in examples:
                    problems += [f"example: {p}" for p in self.check(method, template, code, media, example)]
        self.seen.clear()  # examples do not count as coverage
        return count, problems


def validate_spec(spec: Spec) -> list[str]:
    """OpenAPI 3.1 errors of the document (its Schema Objects included)."""
    if not str(spec.get("openapi", "")).startswith("3.1."):
        return [f"openapi version must be 3.1.x, found {spec.get('openapi')!r}"]
    return [f"spec: {e.message[:300]} (at /{'/'.join(map(str, e.absolute_path))})"
            for e in OpenAPIV31SpecValidator(spec).iter_errors()]


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
            found = checker.check(r["method"], r["path"], int(r["status"]), r.get("contentType") or "", r.get("body"))
        except (ValueError, KeyError, TypeError) as e:
            found = [f"unreadable recording: {e!r}"]
        problems += [f"{path.name}:{n}: {p}" for p in found]
    return len(lines), problems


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    spec = yaml.safe_load(Path(argv[1]).read_text())
    problems = validate_spec(spec)
    if problems:  # the response checks below assume a well-formed document
        print("\n".join(problems))
        print(f"openapi: {argv[1]} is not a valid OpenAPI 3.1 document ({len(problems)} errors)")
        return 1
    checker = Checker(spec)
    examples, problems = checker.check_examples()
    print(f"openapi: {argv[1]} is a valid OpenAPI 3.1 document; {examples} response examples checked")
    checked = 0
    if len(argv) == 3:
        checked, found = check_recordings(checker, Path(argv[2]))
        problems += found
        missing = sorted(set(checker.declared()) - checker.seen)
        for method, template, status in missing:
            print(f"not exercised: {method} {template} {status}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    print(f"openapi: {checked} responses checked, {len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
