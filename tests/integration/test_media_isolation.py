"""An upload is read as one file of a real container, never as a list of other files.

Playlists, concat lists, SDP files and images are refused at ``probe`` with a reason a person
can read, and no process opens anything but the upload: not another user's published media,
not a file an absolute path or a ``file:`` URL names. Checked twice: the kernel's own view of
who opened what (strace for each argv, inotify on the victim's media through the real HTTP
upload), and by aiming every reference at a real video that would make ffmpeg succeed.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster.errors import InvalidMedia
from cluster.settings import PipelineSettings, StorageSettings, parse_ladder
from cluster.storage import Storage
from pipelines.tasks import private_source
from pipelines.video import argv as build
from pipelines.video import ffmpeg
from pipelines.video.plan import plan_video
from pipelines.video.probe import probe
from pipelines.video.tiles import plan_storyboard
from tests.integration.client import register_user, upload, wait_finished

PLAYLIST = (
    "probing the upload failed: the file is a playlist (M3U8), not a video: upload the video file itself"
)
CONCAT = "probing the upload failed: the file is a concat list (a list of other files), not a video"
SDP = "probing the upload failed: the file describes a network stream (SDP), not a video"
SYSTEM_PREFIXES = ("/usr/", "/lib", "/etc/", "/proc/", "/sys/", "/dev/", "/run/", "/var/cache/")


def playlist(*uris: str) -> str:
    """An HLS playlist naming ``uris``: a master playlist when they are playlists themselves."""
    if all(uri.endswith(".m3u8") for uri in uris):
        lines = ["#EXTM3U"]
        for uri in uris:
            lines += ["#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=320x180", uri]
        return "\n".join([*lines, ""])
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2"]
    for uri in uris:
        lines += ["#EXTINF:2.0,", uri]
    return "\n".join([*lines, "#EXT-X-ENDLIST", ""])


def hostile_uploads(target: Path, relative_target: str) -> dict[str, tuple[str, str]]:
    """name -> (file text, the reason the job must give); every reference names a real video."""
    return {
        "playlist_relative": (playlist(relative_target), PLAYLIST),
        "playlist_absolute": (playlist(str(target)), PLAYLIST),
        "playlist_file_url": (playlist(f"file:{target}"), PLAYLIST),
        "playlist_sdp_inside": (
            playlist(f"file:{target.with_suffix('.sdp')}", "rtp://127.0.0.1:5004"),
            PLAYLIST,
        ),
        "ffconcat": (f"ffconcat version 1.0\nfile {relative_target}\nfile {target}\n", CONCAT),
        "concat_list": (f"file '{relative_target}'\nfile '{target}'\n", CONCAT),
        "sdp": (
            "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=cam\nc=IN IP4 127.0.0.1\nt=0 0\n"
            "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
            SDP,
        ),
    }


# --- step level: the argv builders under strace ----------------------------------------------


class SimpleLayout:
    def __init__(self, root: Path, victim: Path) -> None:
        self.root = root
        self.victim = victim
        self.upload = root / "sources" / "attacker" / "source"

    def write(self, text: str) -> Path:
        self.upload.write_text(text)
        return self.upload


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, clip: Callable[..., Path]) -> SimpleLayout:
    """A storage-like tree: a victim's published video and an attacker's upload beside it."""
    root = tmp_path_factory.mktemp("root")
    victim = root / "media" / "victim" / "video.mp4"
    victim.parent.mkdir(parents=True)
    shutil.copy(clip(seconds=2, width=320, height=180, subtitles=False), victim)
    shutil.copy(victim, victim.with_suffix(".sdp"))  # any name a reference may use exists
    (root / "sources" / "attacker").mkdir(parents=True)
    return SimpleLayout(root, victim)


def files_opened(argv: list[str], cwd: Path, tmp_path: Path) -> set[Path]:
    """Every non-system file any process of ``argv`` tried to open, as the kernel saw it."""
    trace = tmp_path / "trace"
    subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace), *argv],
        cwd=cwd,
        capture_output=True,
        timeout=60,
        check=False,
    )
    opened = set()
    for line in trace.read_text().splitlines():
        if '"' not in line:
            continue
        name = line.split('"')[1]
        if not name.startswith(SYSTEM_PREFIXES):
            opened.add(Path(os.path.normpath(cwd / name)))
    return opened


needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def test_following_the_references_would_open_the_victims_video(layout: SimpleLayout, tmp_path: Path) -> None:
    """The control: without the one-file options ffprobe reads the victim's video through the list."""
    upload_path = layout.write(playlist("../../media/victim/video.mp4"))
    plain = ffmpeg.run_json(build.output_probe_argv(upload_path))
    assert plain["format"]["format_name"] == "hls" and plain["streams"][0]["codec_type"] == "video"
    if shutil.which("strace"):
        assert layout.victim in files_opened(build.output_probe_argv(upload_path), tmp_path, tmp_path)


HOSTILE_KINDS = [
    "playlist_relative",
    "playlist_absolute",
    "playlist_file_url",
    "playlist_sdp_inside",
    "ffconcat",
    "concat_list",
    "sdp",
]
"""Uploads that would make ffmpeg open other files, each made by ``HostileLayout``."""


@needs_strace
@pytest.mark.parametrize(
    "kind",
    HOSTILE_KINDS,
)
def test_no_command_that_reads_an_upload_opens_another_file(
    layout: SimpleLayout, tmp_path: Path, kind: str
) -> None:
    text, _ = hostile_uploads(layout.victim, "../../media/victim/video.mp4")[kind]
    upload_path = layout.write(text)
    plan = plan_video(probe(layout.victim), PipelineSettings(ladder=parse_ladder("180:300")))
    board = plan_storyboard(plan.duration_s, Fraction(plan.display_aspect))
    out = tmp_path / "out"
    commands = {
        "probe": build.probe_argv(upload_path),
        "first frames": build.first_frames_argv(upload_path),
        "encode": build.encode_chunk_argv(
            upload_path, [(plan.renditions[0], out / "180p.mp4")], plan, plan.chunks[0], 1
        ),
        "aac": build.encode_aac_argv(upload_path, out / "a.m4a", plan),
        "mp3": build.encode_mp3_argv(upload_path, out / "a.mp3", plan),
        "poster": build.poster_argv(upload_path, out / "p.jpg", plan),
        "storyboard": build.storyboard_argv(upload_path, out / "s.jpg", board),
        "storyboard keyframes": build.keyframes_before_argv(upload_path, board),
        "storyboard tile": build.storyboard_tile_argv(upload_path, out / "t.png", board, 1),
    }
    for name, command in commands.items():
        # From the upload's own directory, where its relative references point into the tree.
        assert files_opened(command, upload_path.parent, tmp_path) == {upload_path}, name
        assert not out.exists()


@pytest.mark.parametrize("kind", ["playlist_relative", "playlist_absolute", "ffconcat", "concat_list", "sdp"])
def test_probe_refuses_a_list_of_other_files_with_its_reason(layout: SimpleLayout, kind: str) -> None:
    text, sentence = hostile_uploads(layout.victim, "../../media/victim/video.mp4")[kind]
    with pytest.raises(InvalidMedia) as caught:
        probe(layout.write(text))
    assert caught.value.detail == sentence.removeprefix("probing the upload failed: ")


def test_probe_refuses_an_image_and_an_mp3(clip: Callable[..., Path], tmp_path: Path) -> None:
    source = clip(seconds=1, width=64, height=64, subtitles=False)
    image, song = tmp_path / "still", tmp_path / "song"
    for out, codec in (
        (image, ["-frames:v", "1", "-c:v", "png", "-f", "image2"]),
        (song, ["-vn", "-f", "mp3"]),
    ):
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), *codec, str(out)], check=True)
    with pytest.raises(InvalidMedia, match=r"^the file is an image or image sequence, not a video$"):
        probe(image)
    with pytest.raises(InvalidMedia, match=r"^the file has no video stream \(audio-only\?\)$"):
        probe(song)


def test_probe_reads_a_private_path_that_relative_references_cannot_leave(layout: SimpleLayout) -> None:
    """The second wall on its own: even a reader without the allow-list finds nothing relative."""
    layout.write(playlist("../../media/victim/video.mp4"))
    storage = Storage(StorageSettings(url=f"file://{layout.root}"))
    with private_source(storage, "sources/attacker/source") as private:
        assert [p.name for p in private.parent.iterdir()] == ["source"]
        assert layout.root not in private.parent.parents
        assert private.read_text() == layout.upload.read_text()
        with pytest.raises(ffmpeg.FFmpegError):
            ffmpeg.run_json(build.output_probe_argv(private))  # no allow-list: follows, finds nothing
        folder = private.parent
    assert not folder.exists() and layout.upload.exists()
    # The control: the same unrestricted read of the stored path reaches the victim's video.
    assert ffmpeg.run_json(build.output_probe_argv(layout.upload))["format"]["format_name"] == "hls"


# --- through HTTP: another user's private video stays out of reach ----------------------------


class OpenWatch:
    """inotify on directories: which files in them any process opened while it watched."""

    IN_OPEN = 0x20
    IN_NONBLOCK = 0o4000

    def __init__(self, folders: list[Path]) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(self.IN_NONBLOCK)
        assert self._fd >= 0, os.strerror(ctypes.get_errno())
        self._folders = {}
        for folder in folders:
            wd = self._libc.inotify_add_watch(self._fd, str(folder).encode(), self.IN_OPEN)
            assert wd >= 0, os.strerror(ctypes.get_errno())
            self._folders[wd] = folder

    def opened(self) -> list[Path]:
        names = []
        try:
            data = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return []
        offset = 0
        while offset < len(data):
            wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            raw = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
            names.append(self._folders[wd] / raw)
            offset += 16 + length
        return names

    def close(self) -> None:
        os.close(self._fd)


@pytest.fixture(scope="module")
def victim(api: httpx.Client, clip: Callable[..., Path]) -> dict[str, Any]:
    owner = register_user(api)
    response = upload(api, owner, clip(seconds=3), title="my private video", visibility="private")
    assert response.status_code == 202, response.text
    video_id = response.json()["id"]
    assert wait_finished(api, owner, video_id)["status"] == "ready"
    return {"id": video_id, "owner": owner}


@pytest.fixture
def watch_victim(victim: dict[str, Any], storage: Any) -> Iterator[OpenWatch]:
    media = Path(storage.path(f"media/{victim['id']}"))
    watch = OpenWatch([media, *(p for p in media.iterdir() if p.is_dir())])
    try:
        yield watch
    finally:
        watch.close()


@pytest.mark.parametrize(
    "kind",
    HOSTILE_KINDS,
)
def test_an_uploaded_list_cannot_pull_in_another_users_private_video(
    api: httpx.Client,
    new_user: Any,
    storage: Any,
    victim: dict[str, Any],
    watch_victim: OpenWatch,
    tmp_path: Path,
    kind: str,
) -> None:
    vid = victim["id"]
    published = Path(storage.path(f"media/{vid}/180p.m3u8"))
    assert published.is_file()
    # Relative to the attacker's source, sources/{id}/source, this is the victim's media playlist.
    text, sentence = hostile_uploads(published, f"../../media/{vid}/180p.m3u8")[kind]
    attacker = new_user()
    (tmp_path / "holiday.mp4").write_text(text)
    response = upload(api, attacker, tmp_path / "holiday.mp4", title=f"innocent {kind}")
    assert response.status_code == 202, response.text
    attack_id = response.json()["id"]

    status = wait_finished(api, attacker, attack_id, timeout_s=120)
    assert watch_victim.opened() == [], "a process opened the victim's media while the attack ran"
    assert (status["status"], status["step"], status["error"]) == ("failed", "probe", sentence)
    assert storage.list(f"work/{attack_id}") == [] and storage.list(f"media/{attack_id}") == []
    assert storage.exists(f"sources/{attack_id}/source"), "a failed job keeps its source"
    # The victim's video is untouched and still private.
    assert api.get(f"/v1/videos/{vid}", headers=attacker.headers).status_code == 404
    assert api.get(f"/v1/videos/{vid}", headers=victim["owner"].headers).json()["status"] == "ready"
