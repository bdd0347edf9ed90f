"""Keep a workflow's source text inside its DAG, so the DAG can be exported back losslessly.

The source goes into ``doc_md``, below the workflow's description, as a fenced YAML block
after an HTML comment marker. ``doc_md`` is part of the serialized DAG (so the text survives
into the metadata DB and the UI, where users see the workflow that built the DAG), it is not
a param (nothing appears in the trigger form), and both the built and the generated DAG
carry the same text.
"""

from __future__ import annotations

import re

MARKER = "<!-- mlplatform-workflow"
#: Largest source kept in ``doc_md`` (characters); a larger one is named, not embedded (the
#: serialized DAG and the UI stay small), and ``export`` then needs the file itself.
MAX_EMBED_CHARS = 256 * 1024
TOO_LARGE = "<!-- mlplatform-workflow-not-embedded"
_BLOCK_RE = re.compile(
    r"<!-- mlplatform-workflow (?P<name>.+?) -->\n(?P<fence>`{3,})(?:yaml|json)\n(?P<text>.*)\n(?P=fence)\n?\Z",
    re.S,
)


def workflow_doc_md(text: str, *, name: str, description: str | None = None) -> str:
    """The ``doc_md`` of a DAG built from a workflow: description, then the source.

    :param text: the workflow file's text, as read.
    :param name: the workflow file's name (kept for export).
    :param description: the workflow's description, shown first.
    """
    head = f"{description}\n\n" if description else ""
    if len(text) > MAX_EMBED_CHARS:
        return (
            f"{head}{TOO_LARGE} {name} -->\nThe workflow source ({len(text)} characters) is larger than "
            f"{MAX_EMBED_CHARS} and is not embedded; see the workflow file {name}.\n"
        )
    fence = "```"
    while fence in text:
        fence += "`"
    lang = "json" if name.endswith(".json") else "yaml"
    body = text if text.endswith("\n") else text + "\n"
    return f"{head}{MARKER} {name} -->\n{fence}{lang}\n{body}{fence}\n"


def extract_workflow(doc_md: str | None) -> tuple[str, str] | None:
    """The (file name, source text) kept in ``doc_md``, or None when there is none.

    :param doc_md: a DAG's ``doc_md``.
    """
    if not doc_md:
        return None
    start = doc_md.rfind(MARKER)
    if start < 0:
        return None
    m = _BLOCK_RE.match(doc_md[start:])
    if m is None:
        return None
    return m.group("name"), m.group("text") + "\n"
