"""A resumable upload's part file on ``file://`` storage (``cluster.resumable``): bytes past the
recorded offset are cut off when the next PATCH opens it, a checkpoint is on disk, and the last
byte moves the file into place as the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import layout
from cluster.errors import ServerError
from cluster.resumable import FILE_CHECKPOINT_BYTES, MIB, complete, discard, open_writer, part_bytes
from cluster.settings import StorageSettings
from cluster.storage import Storage

VID = "ab" * 16


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(StorageSettings(url=(tmp_path / "store").as_uri()))


def test_part_size_keeps_any_upload_within_ten_thousand_parts() -> None:
    assert part_bytes(1) == part_bytes(4096 * MIB) == 5 * MIB
    assert part_bytes(100 * 1024 * MIB) == 11 * MIB  # 100 GiB: 10.24 MiB, rounded up
    assert 100 * 1024 * MIB / part_bytes(100 * 1024 * MIB) <= 10_000


def test_a_patch_cut_short_leaves_only_what_was_recorded(storage: Storage) -> None:
    writer = open_writer(storage, VID, 30, 0, {})
    writer.write(b"0123456789")
    assert writer.durable() == (0, {})  # written, not yet synced
    assert writer.checkpoint() == (10, {})
    writer.write(b"garbage that was never recorded")
    writer.close()
    # The catalog says 10: the next PATCH writes from there and the garbage is gone.
    writer = open_writer(storage, VID, 30, 10, {})
    writer.write(b"abcdefghijklmnopqrst")
    assert writer.checkpoint() == (30, {})
    writer.close()
    complete(storage, VID, 30, {})
    assert storage.read_bytes(layout.source_key(VID)) == b"0123456789abcdefghijklmnopqrst"
    assert storage.list(layout.upload_prefix(VID)) == []
    complete(storage, VID, 30, {})  # again (a crash before the catalog heard): the same source


def test_progress_is_synced_every_few_mib(storage: Storage) -> None:
    writer = open_writer(storage, VID, 3 * FILE_CHECKPOINT_BYTES, 0, {})
    block = bytes(FILE_CHECKPOINT_BYTES // 2)
    writer.write(block)
    assert writer.durable()[0] == 0
    writer.write(block)
    assert writer.durable()[0] == FILE_CHECKPOINT_BYTES
    writer.close()


def test_a_record_past_the_stored_bytes_is_an_error_not_a_hole(storage: Storage) -> None:
    writer = open_writer(storage, VID, 30, 0, {})
    writer.write(b"12345")
    writer.checkpoint()
    writer.close()
    with pytest.raises(ServerError, match="has 5 bytes stored but recorded 9"):
        open_writer(storage, VID, 30, 9, {})


def test_completion_refuses_a_short_source_and_discard_removes_the_part_file(storage: Storage) -> None:
    writer = open_writer(storage, VID, 30, 0, {})
    writer.write(b"12345")
    writer.checkpoint()
    writer.close()
    assert storage.list(layout.upload_prefix(VID)) == [layout.upload_data_key(VID)]
    discard(storage, VID)
    assert storage.list(layout.upload_prefix(VID)) == []
    with pytest.raises(ServerError, match="its source has None of 30 bytes"):
        complete(storage, VID, 30, {})
