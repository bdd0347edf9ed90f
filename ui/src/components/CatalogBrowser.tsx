// The notebooks and scripts under the configured roots: drag one onto the canvas to create a step
// with the file set and its own parameters pre-filled.
import { type ReactElement, useMemo, useState } from "react";
import { useDesigner } from "../context";
import { groupCatalog } from "../logic/catalog";
import type { Catalog } from "../types";
import { type DropPayload, startDrag } from "./Palette";

export interface CatalogBrowserProps {
  catalog: Catalog | null;
  error: string | null;
  onAdd(payload: DropPayload): void;
  onReload(): void;
}

export function CatalogBrowser({ catalog, error, onAdd, onReload }: CatalogBrowserProps): ReactElement {
  const { readOnly } = useDesigner();
  const [search, setSearch] = useState("");
  const groups = useMemo(() => (catalog ? groupCatalog(catalog.files, search) : []), [catalog, search]);
  return (
    <div className="mlp-list" data-testid="catalog">
      <div className="mlp-row">
        <input className="mlp-input" placeholder="Search files" value={search} onChange={(e) => setSearch(e.target.value)} aria-label="Search files" />
        <button type="button" className="mlp-btn mlp-btn--small" onClick={onReload} title="Read the folders again">
          ↻
        </button>
      </div>
      {error ? <p className="mlp-error">{error}</p> : null}
      {!catalog && !error ? <p className="mlp-help">Loading…</p> : null}
      {catalog && catalog.files.length === 0 ? <p className="mlp-help">No notebooks or R scripts under {catalog.roots.join(", ")}.</p> : null}
      {groups.map((group) => (
        <div key={group.folder} className="mlp-group">
          <div className="mlp-group__title">{group.folder}/</div>
          {group.files.map((file) => (
            <button
              type="button"
              key={`${file.root}/${file.path}`}
              className="mlp-list__item"
              draggable={!readOnly}
              disabled={readOnly}
              onDragStart={(event) => startDrag(event, { kind: "file", root: file.root, path: file.path })}
              onDoubleClick={() => onAdd({ kind: "file", root: file.root, path: file.path })}
              title={`${file.root}/${file.path}\n${file.parameters.map((p) => `${p.name} = ${JSON.stringify(p.default)}`).join("\n")}`}
              data-testid={`catalog-${file.path}`}
            >
              <span className={`mlp-badge mlp-badge--${file.step_type}`}>{file.kind}</span>
              <span className="mlp-list__text">{file.path.split("/").pop()}</span>
              <span className="mlp-list__meta">{file.parameters.length} params</span>
            </button>
          ))}
        </div>
      ))}
    </div>
  );
}
