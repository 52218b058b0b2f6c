"""One exception hierarchy for the whole toolkit.

Library code raises these; only :mod:`genre_cli.cli` turns them into a message and an
exit code (``exit_code`` attribute): 2 for bad usage or bad input, 1 for a failed run.
"""

from __future__ import annotations


class GenreError(Exception):
    """Root of every error the toolkit raises on purpose. A failed run: exit code 1."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(GenreError):
    """Bad option or combination of options (unknown model name, ...). Exit code 2."""

    exit_code = 2


class OptionTypeError(UsageError):
    """An option value of the wrong type (a string where an integer is needed, ...). Exit code 2."""


class InputError(GenreError):
    """An input file or value cannot be used (missing, corrupt, wrong kind). Exit code 2."""

    exit_code = 2


class MissingInputError(InputError):
    """An input artifact does not exist; ``hint`` names the command that makes it."""


class ArtifactError(InputError):
    """An HDF5 artifact is incomplete, of another stage, of a newer schema, or malformed."""


class CheckpointError(InputError):
    """A pretrained-weights source (TensorFlow tensor bundle, the wheel holding it, a converted
    weight file) is corrupt, truncated or not what was expected."""


class AudioError(InputError):
    """One audio file cannot be decoded or is unusable (empty, NaN, too short)."""


class DatasetError(GenreError):
    """A dataset cannot be fetched, verified or indexed. A failed run: exit code 1."""


class SourceError(DatasetError):
    """The dataset source given is unusable: no such archive, not an archive, damaged,
    checksum mismatch, no clips in the expected layout. Bad input: exit code 2."""

    exit_code = 2


class DownloadError(DatasetError):
    """Every source of a download failed, or a checksum did not match."""


class UnsafeArchiveError(DatasetError):
    """An archive member would escape the extraction root (absolute path, ``..``, link, device)."""

    exit_code = 2


class LockError(GenreError):
    """Another process is writing the same output (lock file held by a live pid)."""


class DeviceError(UsageError):
    """The requested compute device is not available (e.g. ``--device cuda`` without CUDA)."""
