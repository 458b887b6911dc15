"""Schemathesis hooks for tools/fuzz.sh (loaded through tools/fuzz/schemathesis.toml).

1. Signing. An operation that declares an `X-Hub-Signature-256` header (Meta's webhook) gets
   every generated body signed with the development app secret (HMAC-SHA256 of the exact bytes
   sent), so the fuzzer reaches the payload parser, not only the signature check; invalid bodies
   included. A negative case whose invalid part is not the body and that carries a generated
   signature of its own keeps it, so the 401 path is fuzzed too.
   (schemathesis.toml mixes the stack's phone number id and known phones into the bodies, so
   deliveries are processed rather than ignored as another number's events.)

2. Documented exceptions, read from openapi.yaml rather than listed here, so new operations
   are covered the day they are added to the spec:
   - `x-schema-valid-refusals` (on an operation): a list of `{status, code, param?}` answers
     the contract gives to schema-valid requests for a rule JSON Schema cannot express (a
     phone libphonenumber rejects, an id of the right shape that names no session). A
     "schema-valid request rejected" failure is dropped only when the response has exactly
     such a status and error envelope `code` (and `param`, when declared).
   - `x-schema-invalid-acknowledged` (on an operation): `{status}`: the answer to any
     authenticated request whatever its body (Meta's webhook acknowledges every correctly
     signed delivery, readable or not, so Meta does not retry it). A "schema-violating request
     accepted" failure is dropped only for exactly that status and, where the operation is
     signed, only when the request carried the right signature.
   Every other failure, of every check, fails the run.

3. Meta's payload shapes, documented in openapi.yaml. Every example of a signed operation's
   request body (for the webhook: the button reply, a delivery status, and Meta's 2026
   shapes with business-scoped user ids: a reply with only `user_id`, one with the phone
   beside `user_id` and `username`, a status with `recipient_user_id`, a `failed` status
   without `contacts`, a `user_id_update` system message) is mixed into the bodies the
   fuzzing phases generate, so they are drawn, varied by the stateful phase's order, and
   signed like any other, not only sent once by the examples phase.

4. The stack's own ids. `webhook-ids` and `event-ids` in schemathesis.toml hold
   `${FUZZ_WEBHOOK_ID}` and `${FUZZ_EVENT_ID}` (a webhook and a logged event that tools/fuzz.sh
   creates); a generated body field holding one gets the value before the request is sent. The
   fuzzer reuses ids it saw in answers, so a DELETE naming the fixture webhook is sent with an
   id that names none instead (the fixture lives for the whole run). `/reply` gets the dev
   user's live session (`FUZZ_SESSION_ID`) for most generated ids (`map_path_parameters`), and
   recover a `since` of an hour ago for most generated times (`_within_reach`).

5. The local stand-in for API Gateway. `cargo lambda watch` cannot forward a body that is not
   UTF-8 (API Gateway would base64-encode it for the function), nor a header value that is not
   ASCII, and answers such a request with its own 500 before any function runs. Failures on
   exactly those responses (such a request, no `X-Request-Id`, cargo lambda's problem
   document) are not the service's and are dropped; the Rust tests cover base64-encoded
   bodies, and a panic in a function would still fail (its 500 comes for a forwardable request).
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import os
import re
import time
from collections import Counter
from typing import Any

import requests
import schemathesis
import yaml
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation


def _parse_strategy_lambdas_early() -> None:
    """Works around a CPython 3.11 bug ("SystemError: AST constructor recursion depth mismatch").

    Hypothesis describes a strategy's lambdas by parsing their module's source with
    `ast.parse`, once per module (then cached). Drawing the deeply nested webhook body, that
    first parse can happen deep in the stack, where CPython 3.11 raises the error above; parsing
    the generator's module here, at the top of the stack, fills the cache first.
    """
    try:
        import ast
        import inspect

        from hypothesis.internal import lambda_sources
        from schemathesis.generation.jsonschema import strategy

        lines, _ = inspect.findsource(strategy._TYPE_CHECKS["null"])
        tree = ast.parse("".join(lines))
        # Hypothesis' own cache is per thread and the workers are threads: one shared by all
        # (a handful of modules' lambdas, so unbounded is fine).
        shared = {tuple(lines): lambda_sources.extract_all_lambdas(tree)}
        lambda_sources.AST_LAMBDAS_CACHE = shared
    except Exception:  # an internal moved: the run works as before, only without the warm-up
        pass


_parse_strategy_lambdas_early()

SIGNATURE_HEADER = "X-Hub-Signature-256"
REFUSALS = "x-schema-valid-refusals"
ACKNOWLEDGED = "x-schema-invalid-acknowledged"


def _declares_signature(operation: Any) -> bool:
    """Whether the operation is signed like Meta's webhook (it declares the signature header)."""
    return any(p.name.lower() == SIGNATURE_HEADER.lower() for p in operation.headers)


def _keeps_generated_signature(case: Any) -> bool:
    """A negative case with a signature of its own whose body is not the part made invalid."""
    meta = case.meta
    if meta is None or meta.generation.mode.is_positive:
        return False
    if meta.is_negative_at(ParameterLocation.BODY):
        return False  # an invalid body is signed, so it reaches the parser
    return _header(case, SIGNATURE_HEADER) is not None


def _header(case: Any, name: str) -> str | None:
    for key, value in (case.headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "openapi.yaml")


def _documented_bodies(path: str, method: str) -> list[Any]:
    """The request-body examples openapi.yaml gives for the operation (none if it gives none)."""
    with open(SPEC, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    operation = spec.get("paths", {}).get(path, {}).get(method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    return [e["value"] for e in content.get("examples", {}).values() if "value" in e]


@schemathesis.hook
def before_generate_body(context: Any, strategy: Any) -> Any:
    """Signed operations draw their documented payload shapes beside the generated bodies."""
    operation = context.operation
    if operation is None or not _declares_signature(operation):
        return strategy
    bodies = _documented_bodies(operation.path, operation.method)
    if not bodies:
        return strategy
    return st.one_of(strategy, st.sampled_from(bodies))


# Dictionary values known only once the stack runs (tools/fuzz.sh exports them): schemathesis
# expands `${VAR}` in some configuration fields but not in dictionaries, so a generated body
# carries the placeholder and it is replaced here, before the request is sent.
PLACEHOLDERS = {f"${{{name}}}": name for name in ("FUZZ_WEBHOOK_ID", "FUZZ_EVENT_ID")}


def _fill_placeholders(body: Any) -> None:
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if isinstance(value, str) and value in PLACEHOLDERS:
            body[key] = os.environ.get(PLACEHOLDERS[value], value)


# An id of the right shape that names no webhook: what a DELETE of the fixture is sent with.
NOBODYS_WEBHOOK = "wh_" + "0" * 22


def _keep_the_fixture(case: Any, kwargs: dict[str, Any]) -> None:
    """The fuzzer learns ids from answers and reuses them; a DELETE of the fixture webhook
    would leave redeliver nothing but 404s for the rest of the run, so it names no webhook."""
    fixture = os.environ.get("FUZZ_WEBHOOK_ID")
    if not fixture or case.operation.method.upper() != "DELETE" or not case.operation.path.startswith("/v1/webhooks/"):
        return
    for params in (case.query, kwargs.get("params")):
        if isinstance(params, dict):
            for key in ("webhookId", "id"):
                if params.get(key) == fixture:
                    params[key] = NOBODYS_WEBHOOK


# `SessionId` in openapi.yaml.
SESSION_ID = re.compile(r"wss_[0-9A-Za-z]{22}")


def _picks_fixture(value: Any) -> bool:
    """Four of five generated values, chosen by their own bytes (so a seed still decides)."""
    digest = hashlib.sha256(repr(value).encode()).digest()
    return digest[0] % 5 != 0


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Gives `/reply` the dev user's live session (tools/fuzz.sh's `FUZZ_SESSION_ID`) for four
    of five generated ids, so it reaches the code behind its 400 `session_not_found`. (A
    dictionary cannot: the placeholder does not match the `SessionId` pattern, which
    schemathesis reports as a dictionary mismatch.) Revoke never gets it: the fixture lives for
    the whole run."""
    operation = context.operation
    fixture = os.environ.get("FUZZ_SESSION_ID")
    if not path_parameters or not fixture or operation is None:
        return path_parameters
    if operation.method.upper() == "POST" and operation.path.endswith("/reply"):
        value = path_parameters.get("sessionId")
        # Only a well-formed id is swapped: a malformed one is a negative case, kept as it is.
        if isinstance(value, str) and SESSION_ID.fullmatch(value) and _picks_fixture(value):
            path_parameters["sessionId"] = fixture
    return path_parameters


RECOVER = "/v1/webhooks/logs/recover"

# The start of an RFC 3339 date-time, as JSON Schema's `date-time` format requires.
DATE_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}")


def _within_reach(case: Any, kwargs: dict[str, Any]) -> None:
    """Recover takes a `since` at most 30 days back: a generated date-time is almost never
    that recent, and every call would end in its 400. Four of five well-formed `since` values
    (chosen by their own bytes) become an hour ago, so the code behind the window's checks
    runs too; a malformed one is a negative case, kept as it is."""
    if case.operation.method.upper() != "POST" or case.operation.path != RECOVER:
        return
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    for body in (case.body, kwargs.get("json")):
        if not isinstance(body, dict):
            continue
        since = body.get("since")
        if isinstance(since, str) and DATE_TIME.match(since) and _picks_fixture(since):
            body["since"] = hour_ago


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Fills the stack's ids into generated bodies, and a `since` recover reaches; signs
    webhook deliveries over the exact bytes that are sent."""
    # Both: the case (what reports show) and the transport's arguments (what is sent).
    _fill_placeholders(case.body)
    _fill_placeholders(kwargs.get("json"))
    _keep_the_fixture(case, kwargs)
    _within_reach(case, kwargs)
    if not _declares_signature(case.operation):
        return
    if _keeps_generated_signature(case):
        return  # a generated (wrong) signature: exercises the 401
    # Serialize as schemathesis would, then send those bytes, so the signature covers them.
    prepared = case.as_transport_kwargs(base_url="http://signing.invalid")
    body = requests.Request(
        method="POST",
        url="http://signing.invalid/",
        data=prepared.get("data"),
        json=prepared.get("json"),
    ).prepare().body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    kwargs["data"] = body
    digest = hmac.new(os.environ["FUZZ_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != SIGNATURE_HEADER.lower()}
    headers[SIGNATURE_HEADER] = f"sha256={digest}"
    case.headers = headers


def _error_envelope(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _documented_refusal(case: Any, response: Any) -> bool:
    envelope = _error_envelope(response)
    for refusal in case.operation.definition.raw.get(REFUSALS) or []:
        if (
            int(refusal["status"]) == response.status_code
            and envelope.get("code") == refusal["code"]
            and ("param" not in refusal or envelope.get("param") == refusal["param"])
        ):
            return True
    return False


def _correctly_signed(response: Any) -> bool:
    """Whether the request carried the right signature (an unsigned 200 is never excused)."""
    request = response.request
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    expected = "sha256=" + hmac.new(os.environ["FUZZ_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected)


def _documented_acknowledgement(case: Any, response: Any) -> bool:
    acknowledged = case.operation.definition.raw.get(ACKNOWLEDGED)
    if not acknowledged or int(acknowledged["status"]) != response.status_code:
        return False
    return not _declares_signature(case.operation) or _correctly_signed(response)


def _not_forwardable(request: Any) -> bool:
    """Whether `cargo lambda watch` cannot turn this request into an API Gateway event: a body
    that is not UTF-8 (API Gateway would base64-encode it for the function), or a header value
    that is not ASCII (sent as Latin-1 bytes, which are not a UTF-8 string either)."""
    body = request.body
    if isinstance(body, bytes):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return True
    return any(
        isinstance(value, str) and not value.isascii() for value in request.headers.values()
    )


def _from_local_gateway(response: Any) -> bool:
    """A response cargo lambda made itself because it could not forward the request."""
    if response.request is None or not _not_forwardable(response.request):
        return False
    if response.status_code != 500 or "x-request-id" in {k.lower() for k in response.headers}:
        return False
    return _error_envelope(response).get("type") == "https://httpstatuses.com/500"


DROPPED: Counter[str] = Counter()


@atexit.register
def _report_dropped() -> None:
    """Says what `filter_failure` dropped and why, so "Filtered: N" in the summary is explained."""
    if DROPPED:
        print("fuzz hooks: failures dropped as documented in openapi.yaml (or the local gateway's own):")
        for reason, count in sorted(DROPPED.items()):
            print(f"  {count:5}  {reason}")


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keeps every failure except the refusals and acknowledgements the spec documents."""
    kind = type(failure).__name__
    label = case.operation.label
    if _from_local_gateway(response):
        DROPPED[f"{label}: {kind} on cargo lambda's own 500 for a non-UTF-8 body or header"] += 1
        return False
    if kind == "RejectedPositiveData" and _documented_refusal(case, response):
        code = _error_envelope(response).get("code")
        DROPPED[f"{label}: schema-valid request refused with {response.status_code} {code} ({REFUSALS})"] += 1
        return False
    if kind == "AcceptedNegativeData" and _documented_acknowledgement(case, response):
        DROPPED[f"{label}: schema-invalid body acknowledged with {response.status_code} ({ACKNOWLEDGED})"] += 1
        return False
    return True
