"""Translations on demand: which languages the installed models reach, and asking for one more
language of a ready video.

- ``GET /v1/translations``: every language the installed Argos models translate into, with its
  label and the languages they start from (the upload page's "translate to" choices).
- ``POST /v1/videos/{id}/translations`` ``{"lang": "es"}``: owner only; the video must be ready,
  lack the language, and have an original track a model route reaches. Answers 202 at once; the
  Ray task ``translate:{vid}:{lang}`` translates and publishes (``pipelines.subtitles.on_demand``)
  and the language appears in the video's ``subtitles`` (or a sentence in ``subtitles_warnings``).

Models are read from ``VODRAY_MODELS_DIR`` of the API replica's node, like the job's subtitles
step reads them on its own node: a cluster installs the same models on every node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from catalog.validation import LANG
from cluster.errors import Conflict, Forbidden, InvalidMedia
from pipelines.subtitles.languages import label_for, normalise_lang
from pipelines.subtitles.models import list_models
from pipelines.subtitles.on_demand import reachable_languages, source_for, submit_translation
from pipelines.subtitles.record import SubtitleRecord
from serve.openapi import BEARER, BEARER_OR_ANONYMOUS, errors
from serve.routes import ServicesDep, find_visible_video
from serve.security import User


@dataclass
class TranslationLanguage:
    lang: str
    label: str
    """The language's own name (``Español``)."""
    from_langs: list[str]
    """Languages of original tracks that reach it (through English when no direct model exists)."""


@dataclass
class TranslationLanguages:
    languages: list[TranslationLanguage]


@dataclass
class TranslationRequest:
    lang: Annotated[str, Parameter(pattern=f"^{LANG.pattern}$", description="the language to add, e.g. es")]


@dataclass
class TranslationStarted:
    video_id: str
    lang: str
    from_lang: str
    task: str
    """The Ray task's name, as the dashboard shows it."""
    url: str
    """The video's metadata: the language appears in ``subtitles`` once published."""


@get("/v1/translations", responses=errors(401, 503), security=BEARER_OR_ANONYMOUS)
async def translation_languages(services: ServicesDep) -> TranslationLanguages:
    """The languages installed translation models reach, each with the languages it starts from."""
    models = await anyio.to_thread.run_sync(list_models, services.settings.subtitles.models_dir)
    reach = reachable_languages(models)
    return TranslationLanguages(
        [TranslationLanguage(lang, label_for(lang), sources) for lang, sources in reach.items()]
    )


@post(
    "/v1/videos/{video_id:str}/translations",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
    security=BEARER,
)
async def request_translation(
    request: Request[Any, Any, Any],
    video_id: FromPath[str],
    data: JSONBody[TranslationRequest],
    user: User,
    services: ServicesDep,
) -> Response[TranslationStarted]:
    """Owner only. 409 while the video is not ready or when it has the language already; 422 when
    no installed model reaches the language from one of its original tracks."""
    video = await find_visible_video(services, video_id, user.id)
    if video["owner_id"] != user.id:
        raise Forbidden("only the owner may ask for a translation of a video")
    target = normalise_lang(data.lang)
    if video["status"] != "ready":
        raise Conflict("the video is still being processed: ask for a translation once it is ready")
    record = SubtitleRecord.from_json(video.get("subtitles"))
    if any(track.lang == target for track in record.tracks):
        raise Conflict(f"the video has {label_for(target)} ({target}) subtitles already")
    models = await anyio.to_thread.run_sync(list_models, services.settings.subtitles.models_dir)
    source = source_for(record, target, models)
    if source is None:
        have = ", ".join(sorted({t.lang for t in record.tracks if t.source != "translated"})) or "none"
        raise InvalidMedia(
            f"no installed translation model reaches {target} from this video's subtitles ({have})"
        )
    submit_translation(services.settings, services.catalog, video_id, source, target)
    base = str(request.base_url).rstrip("/")
    started = TranslationStarted(
        video_id, target, source, f"translate:{video_id}:{target}", f"{base}/v1/videos/{video_id}"
    )
    return Response(started, status_code=HTTP_202_ACCEPTED)


translations_router = Router(
    path="/", route_handlers=[translation_languages, request_translation], tags=["subtitles"]
)
