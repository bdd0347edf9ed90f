"""Paths from requests, confined to a root folder.

A relative path is accepted only if each of its parts is a plain name (letters, digits,
``_ - . +`` and spaces, not starting with a dot), and the resolved path (symlinks followed)
is still inside the resolved root. So ``..``, absolute paths, hidden files and symlinks that
lead out of the root are all refused, with a message saying what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from airflow_mlplatform.exceptions import DesignerPathError

NAME_RE = re.compile(r"^[\w\-+ ][\w.\-+ ]*$")
MAX_PATH = 1024


def check_relative(rel: str) -> PurePosixPath:
    """``rel`` as a relative POSIX path of plain names; raises DesignerPathError otherwise.

    :param rel: a path relative to some root, ``/``-separated.
    """
    if not rel or len(rel) > MAX_PATH or "\x00" in rel or "\\" in rel:
        raise DesignerPathError(f"invalid path {rel!r}: give a relative path of plain file names")
    p = PurePosixPath(rel)
    if p.is_absolute() or rel.startswith("/"):
        raise DesignerPathError(
            f"invalid path {rel!r}: absolute paths are not allowed; give it relative to its root"
        )
    for part in p.parts:
        if part in (".", "..") or not NAME_RE.match(part):
            raise DesignerPathError(
                f"invalid path {rel!r}: {part!r} is not allowed (names are letters, digits, _ - + . and spaces, "
                "not starting with a dot; no '..')"
            )
    return p


def confine(root: Path, rel: str) -> Path:
    """The file ``rel`` inside ``root``, resolved; raises DesignerPathError when it escapes.

    :param root: the folder the path must stay in.
    :param rel: the requested relative path.
    """
    p = check_relative(rel)
    base = root.resolve()
    target = (base / Path(*p.parts)).resolve()
    if target != base and base not in target.parents:
        raise DesignerPathError(f"invalid path {rel!r}: it leads outside {root} (a symlink?)")
    return target


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (resolved, symlinks followed) is inside ``root``.

    :param root: the folder.
    :param path: a path found while walking it.
    """
    base = root.resolve()
    try:
        target = path.resolve()
    except OSError:
        return False
    return target == base or base in target.parents
