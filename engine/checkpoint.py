"""Checkpoint files on disk: one ``<prefix>.npz`` per checkpoint and a ``checkpoint`` index.

The format (documented for users in ``docs/checkpoints.md``):

- ``<prefix>.npz`` — a NumPy ``.npz`` archive (``numpy.savez``, no pickled objects): one
  array per saved variable, keyed by its checkpoint name (the variable's op name, e.g.
  ``dense/kernel``), in the variable's dtype and shape.
- ``checkpoint`` — a small text file in the checkpoint directory, in TF1's own text form::

      model_checkpoint_path: "model.ckpt-20"
      all_model_checkpoint_paths: "model.ckpt-10"
      all_model_checkpoint_paths: "model.ckpt-20"

  Paths are written relative to the directory when the checkpoint lives in it, so a
  directory can be moved or copied whole.

Every file is written atomically: into a temporary file in the same directory, flushed and
``fsync``-ed, then renamed over the target (``os.replace``), and the directory is synced.
A crash at any point leaves either the old file or the new one, never a torn file; the
index is only rewritten after the data file it names is complete.

>>> import tempfile, os, numpy as np
>>> d = tempfile.mkdtemp()
>>> write_arrays(os.path.join(d, "model.ckpt-1"), {"w": np.ones(2)})
>>> update_checkpoint_state(d, os.path.join(d, "model.ckpt-1"))
>>> latest_checkpoint(d) == os.path.join(d, "model.ckpt-1")
True
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from gradverify.engine import errors
from gradverify.engine.registry import export

__all__ = ["DATA_SUFFIX", "INDEX_FILENAME", "CheckpointState", "write_arrays", "read_arrays",
           "checkpoint_exists", "get_checkpoint_state", "update_checkpoint_state",
           "latest_checkpoint", "remove_checkpoint", "list_variables", "load_variable"]

DATA_SUFFIX = ".npz"
INDEX_FILENAME = "checkpoint"


# -- atomic writes -----------------------------------------------------------------------------
def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (not possible on every OS: skipped there)."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_file(path: str) -> Iterator[object]:
    """A binary file object that becomes ``path`` only if the block completes."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


def write_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (name -> array) atomically as the checkpoint ``prefix``."""
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise errors.UnimplementedError(
                None, None, f"Cannot save variable {name}: dtype string is not supported "
                "by the .npz checkpoint format")
    with _atomic_file(prefix + DATA_SUFFIX) as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def read_arrays(prefix: str) -> dict[str, np.ndarray]:
    """The arrays of checkpoint ``prefix``; DataLossError if the file is not a checkpoint."""
    path = prefix + DATA_SUFFIX
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise errors.NotFoundError(
            None, None, f"Failed to find any matching files for {prefix}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise errors.DataLossError(
            None, None, f"Unable to open table file {path}: {e}") from e


def checkpoint_exists(prefix: str) -> bool:
    """Whether a checkpoint with this prefix is on disk (TF1 ``train.checkpoint_exists``)."""
    return os.path.isfile(prefix + DATA_SUFFIX)


export("train.checkpoint_exists")(checkpoint_exists)


def remove_checkpoint(prefix: str) -> None:
    """Delete checkpoint ``prefix``'s files (a missing file is not an error)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(prefix + DATA_SUFFIX)


# -- the index file ----------------------------------------------------------------------------
@dataclass
class CheckpointState:
    """The parsed ``checkpoint`` index: the latest prefix and every one still kept."""

    model_checkpoint_path: str
    all_model_checkpoint_paths: list[str] = field(default_factory=list)


_LINE = re.compile(r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"(.*)"\s*$')


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _index_path(checkpoint_dir: str, latest_filename: str | None) -> str:
    return os.path.join(checkpoint_dir, latest_filename or INDEX_FILENAME)


def _absolute(checkpoint_dir: str, p: str) -> str:
    return p if os.path.isabs(p) else os.path.join(checkpoint_dir, p)


def get_checkpoint_state(checkpoint_dir: str,
                         latest_filename: str | None = None) -> CheckpointState | None:
    """The index of ``checkpoint_dir`` with absolute paths, or None if there is none.

    >>> get_checkpoint_state("/nonexistent") is None
    True
    """
    path = _index_path(checkpoint_dir, latest_filename)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    latest, kept = None, []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            raise errors.DataLossError(
                None, None, f"{path}:{lineno}: not a checkpoint index line: {line!r}")
        value = _absolute(checkpoint_dir, _unquote(m.group(2)))
        if m.group(1) == "model_checkpoint_path":
            latest = value
        else:
            kept.append(value)
    if latest is None:
        raise errors.DataLossError(None, None, f"{path}: no model_checkpoint_path")
    return CheckpointState(latest, kept)


export("train.get_checkpoint_state")(get_checkpoint_state)


def update_checkpoint_state(checkpoint_dir: str, model_checkpoint_path: str,
                            all_model_checkpoint_paths: list[str] | None = None,
                            latest_filename: str | None = None) -> None:
    """Rewrite the index atomically; ``model_checkpoint_path`` is listed last in ``all``."""
    kept = [p for p in (all_model_checkpoint_paths or []) if p != model_checkpoint_path]
    kept.append(model_checkpoint_path)
    base = os.path.abspath(checkpoint_dir)

    def rel(p: str) -> str:
        p_abs = os.path.abspath(p)
        return os.path.basename(p_abs) if os.path.dirname(p_abs) == base else p_abs

    lines = [f'model_checkpoint_path: "{_quote(rel(model_checkpoint_path))}"']
    lines += [f'all_model_checkpoint_paths: "{_quote(rel(p))}"' for p in kept]
    with _atomic_file(_index_path(checkpoint_dir, latest_filename)) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


export("train.update_checkpoint_state")(update_checkpoint_state)


def latest_checkpoint(checkpoint_dir: str, latest_filename: str | None = None) -> str | None:
    """The prefix of the newest checkpoint in ``checkpoint_dir`` (from its index), or None
    when there is no index or the checkpoint it names is gone."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is None or not checkpoint_exists(state.model_checkpoint_path):
        return None
    return state.model_checkpoint_path


export("train.latest_checkpoint")(latest_checkpoint)


def _resolve(ckpt_dir_or_file: str) -> str:
    if os.path.isdir(ckpt_dir_or_file):
        found = latest_checkpoint(ckpt_dir_or_file)
        if found is None:
            raise ValueError(f"Couldn't find 'checkpoint' file or checkpoints in given "
                             f"directory {ckpt_dir_or_file}")
        return found
    return ckpt_dir_or_file


def list_variables(ckpt_dir_or_file: str) -> list[tuple[str, list[int]]]:
    """``[(name, shape)]`` of the variables in a checkpoint (or a directory's latest),
    sorted by name (TF1 ``train.list_variables``)."""
    arrays = read_arrays(_resolve(ckpt_dir_or_file))
    return sorted((k, list(v.shape)) for k, v in arrays.items())


export("train.list_variables")(list_variables)


def load_variable(ckpt_dir_or_file: str, name: str) -> np.ndarray:
    """The saved value of variable ``name`` (a trailing ``:0`` is ignored)."""
    name = name[:-2] if name.endswith(":0") else name
    arrays = read_arrays(_resolve(ckpt_dir_or_file))
    if name not in arrays:
        raise errors.NotFoundError(None, None, f"Key {name} not found in checkpoint")
    return arrays[name]


export("train.load_variable")(load_variable)
