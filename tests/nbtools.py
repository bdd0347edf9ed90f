"""Build small notebooks for tests."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf


def write_notebook(
    path: Path,
    cells: list[str | tuple[str, str]],
    *,
    kernel: str | None = "python3",
    language: str = "python",
) -> Path:
    """Write a notebook; a ``(tag, source)`` tuple is a code cell with that tag.

    :param path: where to write it.
    :param cells: cell sources; strings starting with ``#md `` are markdown cells.
    :param kernel: kernelspec name, or None for a notebook without kernel metadata.
    :param language: the kernel's language.
    """
    nb = nbf.v4.new_notebook()
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": language}
        nb.metadata["language_info"] = {"name": language}
    for cell in cells:
        if isinstance(cell, tuple):
            node = nbf.v4.new_code_cell(cell[1])
            node.metadata["tags"] = [cell[0]]
        elif cell.startswith("#md "):
            node = nbf.v4.new_markdown_cell(cell[4:])
        else:
            node = nbf.v4.new_code_cell(cell)
        nb.cells.append(node)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbf.write(nb, str(path))
    return path
