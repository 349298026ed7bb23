"""The lake's partitions through one file system layer (pyarrow's), the same on a local disk,
a shared file system and object storage.

A partition folder holds data files and `_manifest.json`, which names the one data file that
is the partition. Nothing here renames a folder or needs an atomic rename: a data file is
written under a name of its own, the manifest naming it is written last (one small file), and
only then are the files it no longer names deleted. Readers take a partition only through its
manifest, so they see the old partition or the new one, never part of one, on any store; a
writer killed at any point leaves at most files no manifest names.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

MANIFEST_FILE = "_manifest.json"


def file_system(root: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """The file system and path of a lake folder or URI (a local path, `s3://...`)."""
    text = os.fspath(root)
    return pafs.FileSystem.from_uri(text if "://" in text else os.path.abspath(text))


@contextmanager
def written_then_moved(fs: pafs.FileSystem, path: str) -> Iterator[pa.NativeFile]:
    """A stream to a temporary file beside `path`, moved onto it once written whole (a rename
    on a local disk; on object storage the new object appears whole or not at all)."""
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    try:
        with fs.open_output_stream(temporary) as stream:
            yield stream
    except BaseException:
        if fs.get_file_info(temporary).type == pafs.FileType.File:
            fs.delete_file(temporary)
        raise
    fs.move(temporary, path)


def write_json(fs: pafs.FileSystem, path: str, payload: Any) -> None:
    """Write a JSON file whole: readers see the old content or the new, never part of it."""
    with written_then_moved(fs, path) as stream:
        stream.write((json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def read_json(fs: pafs.FileSystem, path: str) -> Any | None:
    """A JSON file's content, or None when there is no such file."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read())


def delete_files_but(fs: pafs.FileSystem, folder: str, keep: set[str]) -> None:
    """Delete the files of a folder whose names are not in `keep` (data files a manifest no
    longer names, leftovers of a killed write)."""
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name not in keep:
            fs.delete_file(info.path)


def delete_folder(fs: pafs.FileSystem, folder: str) -> None:
    """Delete a folder and everything in it, if it is there."""
    if fs.get_file_info(folder).type == pafs.FileType.Directory:
        fs.delete_dir(folder)
