"""The original file of an indexed image, found by document id and never outside its source folder.

A document records the ``relative_path`` of its file under the source folder of the ingest job
that wrote it. What the index says is not trusted: the path must be relative, free of ``..``,
selected by the job's include/exclude globs, and must resolve (symbolic links followed) to a
regular file inside the job's source folder. Anything else is refused with
:class:`UnsafeImagePath`; the path is never URL-decoded or otherwise reinterpreted.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from elasticsearch import ApiError, NotFoundError, TransportError

from provisioning.cluster import Cluster
from provisioning.errors import ProvisionError
from provisioning.image_ingest.scan import PathFilter
from provisioning.queries import UnknownImage
from provisioning.stackfile.stack import Stack


class UnsafeImagePath(ProvisionError):
    """A document whose path points outside its source folder (``..``, absolute, a link out)."""


@dataclass(frozen=True)
class SourceFolder:
    job: str
    root: Path  # resolved
    selected: PathFilter


@dataclass(frozen=True)
class ImageFile:
    doc_id: str
    path: Path  # resolved, inside its source folder
    relative_path: str
    name: str
    media_type: str


def source_folders(stack: Stack, index: str) -> list[SourceFolder]:
    """The source folders of the ingest jobs that write ``index``, in declaration order."""
    folders = []
    for name, job in stack.spec.ingest.items():
        if job.index == index:
            root = stack.resolve(job.source.path).resolve()
            folders.append(SourceFolder(name, root, PathFilter(job.source.include, job.source.exclude)))
    return folders


def inside(root: Path, relative: str) -> Path:
    """``relative`` resolved under the (resolved) folder ``root``, as an existing regular file.

    Raises UnsafeImagePath for an absolute path, a drive, ``..``, a NUL byte, or a path that
    resolves (through symbolic links) outside ``root``; FileNotFoundError when there is no file.
    """
    if not relative or "\x00" in relative:
        raise UnsafeImagePath(f"refused path {relative!r}: empty or with a NUL byte")
    posix = PurePosixPath(relative)
    if posix.is_absolute() or PureWindowsPath(relative).drive or relative.startswith("\\"):
        raise UnsafeImagePath(f"refused path {relative!r}: absolute")
    if ".." in posix.parts or ".." in PureWindowsPath(relative).parts:
        raise UnsafeImagePath(f"refused path {relative!r}: leaves its folder (..)")
    candidate = (root / posix).resolve()
    if not candidate.is_relative_to(root):
        raise UnsafeImagePath(f"refused path {relative!r}: resolves outside the source folder")
    if not candidate.is_file():
        raise FileNotFoundError(relative)
    return candidate


def image_file(stack: Stack, cluster: Cluster, doc_id: str, *, index: str) -> ImageFile:
    """The file of image ``doc_id`` in ``index``.

    Raises UnknownImage (no such document, or its file is gone), UnsafeImagePath (its path would
    leave the source folder or is not one the ingest job selects), ClusterError (cluster refused or
    unreachable).
    """
    try:
        answer = cluster.client.get(index=index, id=doc_id, source_includes=["relative_path", "image_name"])
    except NotFoundError:
        raise UnknownImage(f"no image with id {doc_id!r} in index {index}") from None
    except (ApiError, TransportError) as exc:
        raise cluster.error(exc, f"read image {doc_id} in {index}") from None
    source = answer.body.get("_source") or {}
    relative = source.get("relative_path")
    if not isinstance(relative, str):
        raise UnknownImage(f"image {doc_id!r} in index {index} records no relative_path")
    folders = source_folders(stack, index)
    if not folders:
        raise UnknownImage(f"no ingest job of the stack writes index {index}; its files are unknown")
    refused: UnsafeImagePath | None = None
    for folder in folders:
        try:
            path = inside(folder.root, relative)
        except UnsafeImagePath as exc:
            refused = exc
            continue
        except (FileNotFoundError, OSError):
            continue
        if not folder.selected(relative):
            refused = UnsafeImagePath(
                f"refused path {relative!r}: not selected by ingest job {folder.job}'s include/exclude"
            )
            continue
        name = str(source.get("image_name") or path.name)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return ImageFile(doc_id, path, relative, name, media_type)
    if refused is not None:
        raise refused
    raise UnknownImage(f"the file of image {doc_id!r} ({relative}) is no longer in its source folder")
