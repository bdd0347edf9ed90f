"""HTML for the output viewer: an executed notebook rendered by nbconvert (the failing cell
marked), with a header naming the try and listing the other files of its output folder.

Notebooks hold arbitrary HTML and JavaScript; the page is served with :data:`CSP` (a
sandboxed, opaque origin that can make no requests), so nothing in it can act as the user.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict
from typing import Any

#: Content-Security-Policy of rendered notebooks and reports: an opaque origin (sandbox without
#: allow-same-origin) whose inline scripts run (plots) but can fetch nothing and post no forms.
CSP = (
    "sandbox allow-scripts allow-downloads allow-popups; default-src 'none'; "
    "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
    "media-src data: blob:; connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
#: Content-Security-Policy of downloads: never rendered, never scripted.
DOWNLOAD_CSP = "sandbox; default-src 'none'"
FAILED_TAG = "mlplatform-failed-cell"

_STYLE = """
<style>
.mlp-header{font-family:system-ui,sans-serif;padding:12px 20px;border-bottom:1px solid #ccc;background:#f7f7f9}
.mlp-header h1{font-size:18px;margin:0 0 6px}.mlp-header .mlp-sub{color:#555;font-size:13px}
.mlp-failed-banner{font-family:system-ui,sans-serif;background:#fdecea;color:#8a1c13;border:2px solid #d93025;
 padding:8px 12px;margin:8px 0;border-radius:4px;font-weight:600}
.celltag_mlplatform-failed-cell{outline:3px solid #d93025;outline-offset:2px;border-radius:2px}
.mlp-files{font-family:system-ui,sans-serif;padding:12px 20px;border-top:1px solid #ccc;font-size:14px}
.mlp-files li{margin:2px 0}.mlp-size{color:#777;font-size:12px;margin-left:6px}
</style>
"""

_exporter: Any = None
_exporter_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
_CACHE_SIZE = 16


def _get_exporter() -> Any:
    global _exporter
    if _exporter is None:
        from nbconvert import HTMLExporter
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

        class _FastHTMLExporter(HTMLExporter):
            """HTMLExporter without its final BeautifulSoup pass over the whole page (alt texts and
            tabindex for accessibility), which takes most of the time on a notebook with many
            images; the alt texts are set in :func:`_add_alt_texts` instead."""

            def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
                langinfo = nb.metadata.get("language_info", {})
                lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
                highlight = self.filters.get(
                    "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
                )
                resources = self._init_resources(resources)
                data_type = WidgetsDataTypeFilter(
                    notebook_metadata=self._nb_metadata, parent=self, resources=resources
                )
                self.register_filter("highlight_code", highlight)
                self.register_filter("filter_data_type", data_type)
                return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        _exporter = _FastHTMLExporter(template_name="lab")
    return _exporter


_IMG_NO_ALT = re.compile(r"<img(?![^>]*\balt=)")


def _add_alt_texts(html_text: str) -> str:
    return _IMG_NO_ALT.sub('<img alt="No description has been provided for this image"', html_text)


def mark_failed_cells(nb: Any) -> int:
    """Tag every code cell whose outputs hold an error and put a banner before it; how many.

    :param nb: a NotebookNode (changed in place).
    """
    import nbformat

    failed = 0
    cells = []
    for cell in nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.get("cell_type") == "code" and errors:
            failed += 1
            e = errors[0]
            count = cell.get("execution_count")
            where = f"In [{count}]" if count is not None else "this cell"
            text = f"{e.get('ename', 'Error')}: {e.get('evalue', '')}"
            banner = nbformat.v4.new_markdown_cell(
                f'<div class="mlp-failed-banner" id="failed-cell-{failed}">This cell failed ({html.escape(where)}): '
                f"{html.escape(text)}</div>"
            )
            cells.append(banner)
            tags = list(cell.setdefault("metadata", {}).get("tags", []))
            cell["metadata"]["tags"] = [*tags, FAILED_TAG]
        cells.append(cell)
    nb.cells = cells
    return failed


def notebook_body(text: str, *, key: str = "") -> str:
    """A notebook's JSON text as a full HTML document (nbconvert's lab template), failed cells marked.

    :param text: the ``.ipynb`` content.
    :param key: a cache key for this content (e.g. URI + size + mtime); '' to not cache.
    """
    cache_key = (key, "nb")
    if key and cache_key in _cache:
        _cache.move_to_end(cache_key)
        return _cache[cache_key]
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    failed = mark_failed_cells(nb)
    with _exporter_lock:
        body, _resources = _get_exporter().from_notebook_node(nb)
    body = _add_alt_texts(body)
    if failed:
        body = body.replace("<body", "<body data-failed-cells='" + str(failed) + "'", 1)
    if key:
        _cache[cache_key] = body
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return body


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return ""


def header(*, title: str, subtitle: str, failed: bool, main_name: str | None) -> str:
    """The page header (task, try, main output).

    :param title: dag / task.
    :param subtitle: run id, try, state.
    :param failed: whether a cell failed.
    :param main_name: the rendered file's name.
    """
    fail = ' &middot; <a href="#failed-cell-1">go to the failed cell</a>' if failed else ""
    shown = f" &middot; showing {html.escape(main_name)}" if main_name else ""
    return (
        f'<div class="mlp-header"><h1>{html.escape(title)}</h1><div class="mlp-sub">{html.escape(subtitle)}'
        f'{shown} &middot; <a href="#mlp-files">files</a>{fail}</div></div>'
    )


def file_list(files: list[tuple[str, int | None]], *, href: Any) -> str:
    """The list of the try's files, each a download link.

    :param files: (relative name, size) pairs.
    :param href: name -> download URL.
    """
    if not files:
        items = "<li>(no files)</li>"
    else:
        items = "".join(
            f'<li><a href="{html.escape(href(n))}" download>{html.escape(n)}</a>'
            f'<span class="mlp-size">{_size(s)}</span></li>'
            for n, s in files
        )
    return f'<div class="mlp-files" id="mlp-files"><h2>Files of this try</h2><ul>{items}</ul></div>'


def page(*, document: str | None, top: str, bottom: str) -> str:
    """Put the header and file list around a rendered document (or alone when there is none).

    :param document: a full HTML document (rendered notebook or report), or None.
    :param top: HTML inserted first in the body.
    :param bottom: HTML appended at the end of the body.
    """
    if document is None:
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Outputs</title>{_STYLE}</head>"
            f"<body>{top}{bottom}</body></html>"
        )
    lower = document.lower()
    head_end = lower.find("</head>")
    if head_end >= 0:
        document = document[:head_end] + _STYLE + document[head_end:]
        lower = document.lower()
    body = lower.find("<body")
    body_open = lower.find(">", body) + 1 if body >= 0 else 0
    document = document[:body_open] + top + document[body_open:]
    end = document.lower().rfind("</body>")
    if end < 0:
        return document + bottom
    return document[:end] + bottom + document[end:]
