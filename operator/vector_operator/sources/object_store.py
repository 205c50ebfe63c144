"""One way to reach files wherever they are: a local path (a mounted PersistentVolumeClaim, the
image) or an S3-compatible bucket, as a pyarrow filesystem and a path within it. The S3 keys are
read from the environment variables the assignment names (the pod takes them from a Secret)."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping

import pyarrow.fs as pa_fs

from vector_operator.contract.assignment import S3Access
from vector_operator.sources import SourceMisconfigured

S3_SCHEME = "s3://"


def open_store(path: str, s3: S3Access | None, environ: Mapping[str, str]) -> tuple[pa_fs.FileSystem, str]:
    """The filesystem holding ``path`` and the path within it (``bucket/key`` on S3)."""
    if not path.startswith(S3_SCHEME):
        return pa_fs.LocalFileSystem(), path
    if s3 is None:
        raise SourceMisconfigured(f"{path} is an s3:// path, but no s3 endpoint and credentials are given")
    missing = [name for name in (s3.access_key_env, s3.secret_key_env) if not environ.get(name)]
    if missing:
        raise SourceMisconfigured(
            f"environment variable {', '.join(missing)} (the S3 credentials) is not set: the Job's pod takes "
            "it from the Secret the MigrationPlan names in s3.credentials"
        )
    scheme, endpoint = "https", None
    if s3.endpoint is not None:
        scheme, _, endpoint = s3.endpoint.partition("://")
    filesystem = pa_fs.S3FileSystem(
        access_key=environ[s3.access_key_env],
        secret_key=environ[s3.secret_key_env],
        region=s3.region,
        endpoint_override=endpoint.rstrip("/") if endpoint else None,
        scheme=scheme,
        allow_bucket_creation=False,
        allow_bucket_deletion=False,
    )
    return filesystem, path.removeprefix(S3_SCHEME).rstrip("/")


def as_written(pattern: str, path: str) -> str:
    """``path`` (within the filesystem :func:`open_store` gave for ``pattern``) as the user wrote
    it: s3://bucket/key for an object, the path itself on a local filesystem."""
    return S3_SCHEME + path if pattern.startswith(S3_SCHEME) else path


def glob_files(filesystem: pa_fs.FileSystem, pattern: str) -> list[str]:
    """The files matching ``pattern`` (a glob in its last part only, e.g. /data/*.parquet), in
    name order; the path itself when it has no glob."""
    if not any(char in pattern for char in "*?["):
        info = filesystem.get_file_info(pattern)
        return [pattern] if info.type == pa_fs.FileType.File else []
    directory, name = posixpath.split(pattern)
    if any(char in directory for char in "*?["):
        raise SourceMisconfigured(
            f"{pattern}: only the file name may hold a glob (e.g. /data/articles/*.jsonl)"
        )
    infos = filesystem.get_file_info(pa_fs.FileSelector(directory, allow_not_found=True))
    files = [info for info in infos if info.type == pa_fs.FileType.File]
    return sorted(info.path for info in files if fnmatch.fnmatch(info.base_name, name))
