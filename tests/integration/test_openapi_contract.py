"""The OpenAPI contract at ``/schema/openapi.json`` is what the live API really does.

Schemathesis (pinned in the ``test`` extra) fuzzes every operation over real HTTP with every
check on and a fixed seed, as a signed-in user (a real bearer token) and, for its auth checks,
without one. It finds nothing, or the test fails with its report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from schemathesis.core.warnings import SchemathesisWarning

from cluster.storage import Storage
from tests.integration.test_api_bad_input import publish_fake_video, remove_fake_video

SEED = 20261123
MAX_EXAMPLES = 50
"""Per operation and phase: the run takes under a minute on a 2-core machine."""
RUN_TIMEOUT_S = 240

# Not fuzzed, each for a reason:
# - POST /v1/videos: its body is a streamed multipart upload, and each accepted example would
#   store a file and start a real pipeline job; tests/integration/test_api_bad_input.py covers
#   its every refusal (400, 401, 413, 422, 429), and test_every_route_declares_its_errors
#   below holds its contract.
# - POST /v1/uploads: each accepted example would reserve an upload slot and keep an upload for a
#   day, and its Upload-Metadata (base64 of checked text) has no exact schema;
#   tests/integration/test_tus.py covers its every refusal (400, 401, 412, 413, 422, 429). The
#   other tus operations are fuzzed (a fuzzed upload id is no one's, or someone else's: 404).
# GET /v1/search is fuzzed: every `q` of 1..200 characters is a query (catalog.search.query), so its
# schema states exactly what it accepts.
# - PATCH /v1/uploads/{upload_id}: schemathesis has no serializer for its body's media type
#   (application/offset+octet-stream); test_tus.py covers its every status.
# - POST and DELETE /v1/auth/browser/refresh: they act only on the pages' HttpOnly cookie sent from
#   a page of the API's own origin (Origin checked), which the fuzzer cannot hold: every call is
#   401 or 403, which schemathesis reports as failed authentication.
#   tests/integration/pages/test_pages_auth.py drives them from a real browser and checks each
#   refusal; the contract test below holds their statuses.
EXCLUDED_OPERATIONS = [
    "V1VideosUploadVideo",
    "V1UploadsCreateTusUpload",
    "V1UploadsUploadIdAppendToTusUpload",
    "V1AuthBrowserRefreshBrowserRefresh",
    "V1AuthBrowserRefreshBrowserLogout",
]
TUS_REJECTIONS = ", ".join(
    f'"{code}"' for code in (400, 401, 403, 404, 405, 406, 409, 412, 415, 422, 428, 429)
)
TUS_MISSING_HEADER = ", ".join(f'"{code}"' for code in (400, 401, 403, 406, 412, 415, 422))
OTHER_WARNINGS = ", ".join(
    f'"{warning.value}"'
    for warning in SchemathesisWarning
    if warning not in (SchemathesisWarning.MISSING_TEST_DATA, SchemathesisWarning.LOW_VALID_RATE)
)
BUT_MISMATCH = ", ".join(
    f'"{warning.value}"'
    for warning in SchemathesisWarning
    if warning
    not in (
        SchemathesisWarning.MISSING_TEST_DATA,
        SchemathesisWarning.LOW_VALID_RATE,
        SchemathesisWarning.VALIDATION_MISMATCH,
    )
)
"""For the operations whose every generated value may be refused: a webhook URL (a random host
resolves nowhere) and a mail link's token (only a mail holds a signed one)."""


def schemathesis_config(public_id: str, hidden_id: str) -> str:
    """Real ids for the fuzzer to draw from now and then, so it reaches the 200/206 paths.

    ``public_id`` is another user's public, ready video with a manifest and a segment;
    ``hidden_id`` another user's private one (404 for our caller). Neither is the caller's, so
    a fuzzed DELETE meets 403 or 404 and never removes them.
    """
    return f"""
# Any warning fails the run (exit code 1), like a failed check, except "missing test data":
# 404 is the right answer to most fuzzed ids and media paths (and to every fuzzed DELETE
# here: neither video is the caller's), which is all that warning would say.
warnings = {{ display = [{OTHER_WARNINGS}], fail-on = true }}

[dictionaries.videos]
values = ["{public_id}", "{hidden_id}"]

[dictionaries.media_files]
values = ["manifest.mpd", "360p/seg-00001.m4s"]

[[operations]]
include-path = ["/v1/videos/{{video_id}}", "/v1/videos/{{video_id}}/status"]
include-method = "GET"
parameters = {{ "path.video_id" = {{ dictionary = "videos", probability = 0.5 }} }}

[[operations]]
include-path = "/v1/videos/{{video_id}}"
include-method = "DELETE"
parameters = {{ "path.video_id" = {{ dictionary = "videos", probability = 0.9 }} }}

# Neither seeded video is the caller's: adding subtitles or asking for a translation meets 403
# or 404, as DELETE does.
[[operations]]
include-path = ["/v1/videos/{{video_id}}/subtitles", "/v1/videos/{{video_id}}/translations"]
include-method = "POST"
parameters = {{ "path.video_id" = {{ dictionary = "videos", probability = 0.9 }} }}

# tus answers a missing or wrong Tus-Resumable with 412 (Precondition Failed), as its protocol says.
[[operations]]
include-path = "/v1/uploads/{{upload_id}}"
checks.negative_data_rejection.expected-statuses = [{TUS_REJECTIONS}]
checks.missing_required_header.expected-statuses = [{TUS_MISSING_HEADER}]

# A URL of the schema's form may still resolve to an address webhooks never go to (400), and a
# token of the schema's form is still not a signed link (400): no schema can say which. (One
# operation id per block: include-path and include-method are either-or, not both.)
[[operations]]
include-operation-id = "V1WebhooksCreateEndpoint"
checks.positive_data_acceptance.expected-statuses = ["201", "400", "409"]
warnings = {{ display = [{BUT_MISMATCH}], fail-on = true }}

[[operations]]
include-operation-id = "V1WebhooksEndpointIdUpdateEndpoint"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "404"]
warnings = {{ display = [{BUT_MISMATCH}], fail-on = true }}

[[operations]]
include-operation-id = "V1AuthEmailConfirmConfirmEmail"
checks.positive_data_acceptance.expected-statuses = ["200", "400"]
warnings = {{ display = [{BUT_MISMATCH}], fail-on = true }}

[[operations]]
include-operation-id = "V1AuthEmailUnsubscribeUnsubscribeLink"
checks.positive_data_acceptance.expected-statuses = ["200", "400"]
warnings = {{ display = [{BUT_MISMATCH}], fail-on = true }}

[[operations]]
include-operation-id = "V1AuthEmailUnsubscribeUnsubscribeOneClick"
checks.positive_data_acceptance.expected-statuses = ["200", "400"]
warnings = {{ display = [{BUT_MISMATCH}], fail-on = true }}

[[operations]]
include-path = "/media/{{video_id}}/{{file_path}}"
parameters = {{ "path.video_id" = {{ dictionary = "videos", probability = 0.7 }}, \
"path.file_path" = {{ dictionary = "media_files", probability = 0.7 }} }}
"""


@pytest.fixture
def published_videos(catalog: Any, storage: Storage, new_user: Any) -> Iterator[tuple[str, str]]:
    owner = new_user()
    public_id = publish_fake_video(catalog, storage, owner.id, "public")
    hidden_id = publish_fake_video(catalog, storage, owner.id, "private")
    try:
        yield public_id, hidden_id
    finally:
        for vid in (public_id, hidden_id):
            remove_fake_video(catalog, storage, vid)


def run_schemathesis(base_url: str, user: SimpleNamespace, config: Path) -> subprocess.CompletedProcess[str]:
    # Run in the config's temp dir: schemathesis keeps a crash cache (.schemathesis/) in its cwd.
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/schema/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {user.access}",
        "--request-timeout",
        "40",
        *(arg for op in EXCLUDED_OPERATIONS for arg in ("--exclude-operation-id", op)),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=config.parent
    )


def test_schemathesis_finds_nothing(
    base_url: str, new_user: Any, published_videos: tuple[str, str], tmp_path: Path
) -> None:
    user = new_user()
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(*published_videos))
    started = time.monotonic()
    result = run_schemathesis(base_url, user, config)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    last_line = output.strip().splitlines()[-1].strip("= ")
    generated = re.search(r"\d+ generated[^\n]*", output)
    print(f"schemathesis: {generated.group() if generated else '?'}; {last_line} (wall {elapsed:.0f} s)")
    assert result.returncode == 0, output[-20000:]
    # Not a failure, not an error, and not a warning either (e.g. an operation it never got past 404).
    assert last_line.startswith("No issues found in "), output[-20000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 500, output[-3000:]
    tested = re.search(r"Tested: (\d+)", output)
    # All 41 but the three uploads and the two routes of the pages' cookie, left out above.
    assert tested and int(tested.group(1)) >= 36, output[-3000:]


def test_every_route_declares_its_errors_and_who_may_call(api: httpx.Client) -> None:
    schema = api.get("/schema/openapi.json").json()
    assert schema["components"]["schemas"]["ErrorBody"] == {
        "properties": {"detail": {"type": "string"}},
        "type": "object",
        "required": ["detail"],
        "title": "ErrorBody",
    }
    assert "security" not in schema  # said route by route: several routes work without a token
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    }
    expected = {
        "GET /healthz": ("200", None),
        "GET /readyz": ("200 503", None),
        "GET /v1/videos": ("200 400 401 503", "optional"),
        "POST /v1/videos": ("202 400 401 413 422 429 503", "required"),
        "GET /v1/videos/{video_id}": ("200 400 401 404 503", "optional"),
        "DELETE /v1/videos/{video_id}": ("204 400 401 403 404 503", "required"),
        "GET /v1/videos/{video_id}/status": ("200 400 401 404 429 503", "optional"),
        "GET /media/{video_id}/{file_path}": ("200 206 400 401 404 416 503", "optional"),
        "HEAD /media/{video_id}/{file_path}": ("200 206 400 401 404 416 503", "optional"),
        "GET /v1/search": ("200 400 401 503", "optional"),
        "OPTIONS /v1/uploads": ("204", None),
        "POST /v1/uploads": ("201 400 401 412 413 422 429 503", "required"),
        "HEAD /v1/uploads/{upload_id}": ("200 400 401 404 412 503", "required"),
        "PATCH /v1/uploads/{upload_id}": ("204 400 401 404 409 412 413 415 423 460 503", "required"),
        "DELETE /v1/uploads/{upload_id}": ("204 400 401 404 409 412 423 503", "required"),
        "PATCH /v1/auth/me": ("200 400 401 409 413 503", "required"),
        "GET /v1/auth/email/confirm": ("200 400 503", None),
        "GET /v1/auth/email/unsubscribe": ("200 400 503", None),
        "POST /v1/auth/email/unsubscribe": ("200 400 413 503", None),
        "POST /v1/webhooks": ("201 400 401 409 413 503", "required"),
        "GET /v1/webhooks": ("200 401 503", "required"),
        "GET /v1/webhooks/{endpoint_id}": ("200 400 401 404 503", "required"),
        "PATCH /v1/webhooks/{endpoint_id}": ("200 400 401 404 413 503", "required"),
        "DELETE /v1/webhooks/{endpoint_id}": ("204 400 401 404 503", "required"),
        "POST /v1/webhooks/{endpoint_id}/secret/rotate": ("200 400 401 404 503", "required"),
        "POST /v1/webhooks/{endpoint_id}/ping": ("202 400 401 404 409 503", "required"),
        "GET /v1/webhooks/{endpoint_id}/deliveries": ("200 400 401 404 503", "required"),
        "POST /v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry": (
            "202 400 401 404 409 503",
            "required",
        ),
        "POST /v1/auth/browser/login": ("200 400 401 403 413 429 503", None),
        "POST /v1/auth/browser/refresh": ("200 401 403 503", "cookie"),
        "DELETE /v1/auth/browser/refresh": ("204 401 403 503", "bearer and cookie"),
        "GET /v1/translations": ("200 401 503", "optional"),
        "POST /v1/videos/{video_id}/translations": ("202 400 401 403 404 409 413 422 503", "required"),
    }
    security = {
        None: None,
        "optional": [{}, {"bearer": []}],
        "required": [{"bearer": []}],
        "cookie": [{"refreshCookie": []}],
        "bearer and cookie": [{"bearer": [], "refreshCookie": []}],
    }
    for name, (codes, who) in expected.items():
        operation = operations[name]
        assert sorted(operation["responses"]) == codes.split(), name
        assert operation.get("security") == security[who], name
        for code in codes.split():
            if code >= "400":
                body = operation["responses"][code]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ErrorBody"}, (name, code)
    for path in ("/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"):
        assert "security" not in operations[f"POST {path}"], path
    assert operations["GET /v1/auth/me"]["security"] == [{"bearer": []}]
    for name, operation in operations.items():  # every route, the auth routes too
        if "requestBody" in operation:  # every body has a size limit
            assert "413" in operation["responses"], name
        for code, response in operation["responses"].items():
            if code >= "400":
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"
                }, (name, code)
    params = {p["name"]: p["schema"] for p in operations["GET /v1/videos"]["parameters"]}
    assert params["limit"] | {"description": None} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
        "description": None,
    }
    assert (params["offset"]["minimum"], params["offset"]["maximum"]) == (0, 2**31 - 1)
    search = {p["name"]: (p["required"], p["schema"]) for p in operations["GET /v1/search"]["parameters"]}
    assert search["q"][0] is True
    assert (search["q"][1]["minLength"], search["q"][1]["maxLength"]) == (1, 200)
    assert search["lang"][1]["pattern"] == "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
    assert search["scope"][1]["pattern"] == "^(title|description|subtitles)(,(title|description|subtitles))*$"
    assert (search["limit"][1]["minimum"], search["limit"][1]["maximum"]) == (1, 100)
    assert (search["offset"][1]["minimum"], search["offset"][1]["maximum"]) == (0, 1000)
    status_params = operations["GET /v1/videos/{video_id}/status"]["parameters"]
    wait = next(p["schema"] for p in status_params if p["name"] == "wait")
    assert (wait["type"], wait["minimum"], wait["maximum"]) == ("number", 0, 30)
    media = operations["GET /media/{video_id}/{file_path}"]["responses"]
    assert set(media["206"]["content"]) >= {"application/dash+xml", "video/iso.segment", "audio/mpeg"}
    assert media["206"]["headers"]["Content-Range"]["required"] is True
    tus_headers = {
        name: [p["name"] for p in operations[name]["parameters"] if p["in"] == "header"]
        for name in ("POST /v1/uploads", "PATCH /v1/uploads/{upload_id}")
    }
    assert tus_headers == {
        "POST /v1/uploads": ["Tus-Resumable", "Upload-Length", "Upload-Metadata"],
        "PATCH /v1/uploads/{upload_id}": ["Tus-Resumable", "Upload-Offset", "Upload-Checksum"],
    }
    assert list(operations["PATCH /v1/uploads/{upload_id}"]["requestBody"]["content"]) == [
        "application/offset+octet-stream"
    ]
    assert operations["POST /v1/uploads"]["responses"]["201"]["headers"]["Location"]["required"] is True
    head_answer = operations["HEAD /v1/uploads/{upload_id}"]["responses"]["200"]["headers"]
    assert {"Upload-Offset", "Upload-Length", "Cache-Control", "Upload-Expires", "Tus-Resumable"} <= set(
        head_answer
    )
    assert json.dumps(schema)  # serialisable as served


def test_options_lists_every_method_of_a_path(api: httpx.Client) -> None:
    # Litestar 2 listed only the first handler's method (litestar#4169): OPTIONS, POST here.
    assert api.options("/v1/videos").headers["allow"] == "GET, OPTIONS, POST"
    assert api.options(f"/v1/videos/{'0' * 32}").headers["allow"] == "DELETE, GET, OPTIONS"
    assert api.options(f"/media/{'0' * 32}/manifest.mpd").headers["allow"] == "GET, HEAD, OPTIONS"
    assert api.options(f"/v1/uploads/{'0' * 32}").headers["allow"] == "DELETE, HEAD, OPTIONS, PATCH"
