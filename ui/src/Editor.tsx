// The editor: the document with undo history, live validation, preview, save/open and the panels.
import type { Connection } from "@xyflow/react";
import { type ReactElement, useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { ApiError } from "./api";
import { CatalogBrowser } from "./components/CatalogBrowser";
import { Canvas } from "./components/Canvas";
import { Dialog } from "./components/Dialog";
import { DocumentPanel } from "./components/DocumentPanel";
import { type DropPayload, Palette } from "./components/Palette";
import { ParamsPanel } from "./components/ParamsPanel";
import { PreviewPanel } from "./components/PreviewPanel";
import { PropertiesPanel } from "./components/PropertiesPanel";
import { Toolbar } from "./components/Toolbar";
import { DesignerContext, type DesignerContextValue } from "./context";
import type { Boot } from "./DesignerApp";
import { useServerCheck } from "./hooks/useServerCheck";
import { useUndoKeys } from "./hooks/useUndoKeys";
import { stepFromCatalogFile } from "./logic/catalog";
import { addStep, documentForSave, removeSteps, emptyDocument, findStep, setPositions, uniqueStepId } from "./logic/document";
import { editorReducer, initialEditor, isDirty } from "./logic/editor";
import { mapErrors } from "./logic/errors";
import type { GraphEdge } from "./logic/graph";
import { canRedo, canUndo } from "./logic/history";
import { autoLayout } from "./logic/layout";
import { commonFieldNames, fieldsForStepType, newStepDefaults } from "./logic/schemaForm";
import { connect, disconnect } from "./logic/wiring";
import type { Catalog, Hints, Position, RunInfo, Step, WorkflowDocument, WorkflowList } from "./types";

type Tab = "files" | "steps" | "params";
type Notice = { kind: "info" | "error" | "success"; text: string } | null;
type Pending = { kind: "saveAs"; draft: boolean; message?: string } | { kind: "conflict" } | { kind: "discard"; then: () => void } | null;

const FILE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.\-/]*\.(ya?ml|json)$/;

function draftName(path: string): string {
  return path.includes(".draft.") ? path : path.replace(/\.(ya?ml|json)$/, ".draft.$1");
}

function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name.split("/").pop() ?? name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Editor({ boot, embedded }: { boot: Boot; embedded: boolean }): ReactElement {
  const { api, palette, profiles, me } = boot;
  const [state, dispatch] = useReducer(editorReducer, emptyDocument(), initialEditor);
  const doc = state.history.present;
  const [workflows, setWorkflows] = useState<WorkflowList>(boot.workflows);
  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [catalogError, setCatalogError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("files");
  const [previewOpen, setPreviewOpen] = useState(false);
  const [fitSignal, setFitSignal] = useState(0);
  const [notice, setNotice] = useState<Notice>(null);
  const [pending, setPending] = useState<Pending>(null);
  const [saveName, setSaveName] = useState("");
  const [runInfo, setRunInfo] = useState<RunInfo | null>(null);
  const [hints, setHints] = useState<Hints["steps"]>({});
  const [busy, setBusy] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  /** The ETags of drafts saved in this session, so saving the same draft again is an update. */
  const draftEtags = useRef<Record<string, string>>({});

  const readOnly = !me.can_edit;
  const writable = workflows.writable && (state.file?.writable ?? true);

  const loadCatalog = useCallback(() => {
    setCatalogError(null);
    api.catalog().then(setCatalog, (e: Error) => setCatalogError(`The catalog failed: ${e.message}`));
  }, [api]);
  useEffect(loadCatalog, [loadCatalog]);

  const validation = useServerCheck(doc, (d, signal) => api.validate(documentForSave(d), state.file?.path ?? null, signal), 400);
  const preview = useServerCheck(doc, (d, signal) => api.preview(documentForSave(d), state.file?.path ?? null, signal), 500, previewOpen);
  const errors = useMemo(() => mapErrors(validation.result?.errors ?? [], doc), [validation.result, doc]);

  useEffect(() => {
    if (!state.file || !doc.id) return;
    let live = true;
    api.hints(doc.id).then(
      (h) => live && setHints(h.steps),
      () => live && setHints({}),
    );
    return () => {
      live = false;
    };
  }, [api, state.file, doc.id]);

  const context = useMemo<DesignerContextValue>(() => {
    const common = commonFieldNames(palette.step_types);
    const cache = new Map<string, ReturnType<typeof fieldsForStepType>>();
    return {
      palette,
      profiles,
      errors,
      hints,
      readOnly,
      stepType: (type) => palette.step_types.find((t) => t.type === type),
      fields: (type) => {
        if (!cache.has(type)) {
          const stepType = palette.step_types.find((t) => t.type === type);
          cache.set(type, stepType ? fieldsForStepType(stepType, common, palette.document_schema) : []);
        }
        return cache.get(type) ?? [];
      },
    };
  }, [palette, profiles, errors, hints, readOnly]);

  const edit = useCallback((next: WorkflowDocument, key?: string) => dispatch({ type: "edit", doc: next, ...(key ? { key } : {}) }), []);
  const onUndo = useCallback(() => dispatch({ type: "undo" }), []);
  const onRedo = useCallback(() => dispatch({ type: "redo" }), []);
  useUndoKeys(root, onUndo, onRedo);

  const dirty = isDirty(state) && doc.steps.length > 0;
  useEffect(() => {
    if (!dirty) return undefined;
    const warn = (e: BeforeUnloadEvent): void => e.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const guard = (then: () => void): void => (dirty ? setPending({ kind: "discard", then }) : then());

  const addFromPayload = useCallback(
    (payload: DropPayload, position?: Position) => {
      let step: Step;
      try {
        if (payload.kind === "file") {
          const file = catalog?.files.find((f) => f.root === payload.root && f.path === payload.path);
          if (!file) throw new Error(`${payload.path} is not in the catalog any more`);
          step = stepFromCatalogFile(file, palette.step_types, doc, workflows.folder);
        } else {
          const stepType = palette.step_types.find((t) => t.type === payload.type);
          if (!stepType) throw new Error(`no step type ${payload.type}`);
          step = { id: uniqueStepId(doc, stepType.type), type: stepType.type, ...newStepDefaults(stepType, palette.document_schema) };
        }
      } catch (e) {
        setNotice({ kind: "error", text: (e as Error).message });
        return;
      }
      const at = position ?? { x: 80 + (doc.steps.length % 4) * 300, y: 80 + Math.floor(doc.steps.length / 4) * 220 };
      edit(addStep(doc, step, at));
      dispatch({ type: "select", id: step.id });
    },
    [catalog, doc, edit, palette, workflows.folder],
  );

  const onDrop = useCallback(
    (raw: string, position: Position) => {
      try {
        addFromPayload(JSON.parse(raw) as DropPayload, position);
      } catch {
        /* not ours */
      }
    },
    [addFromPayload],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      const result = connect(doc, c);
      if (!result.ok) setNotice({ kind: "error", text: result.reason });
      else {
        edit(result.doc);
        setNotice(result.param ? { kind: "info", text: `${c.target}.${result.param} now comes from ${c.source === "$params" ? "the global parameter" : c.source}` } : null);
      }
    },
    [doc, edit],
  );

  const onDelete = useCallback(
    (steps: string[], edges: GraphEdge[]) => {
      let next = doc;
      for (const edge of edges) next = disconnect(next, edge);
      if (steps.length) next = removeSteps(next, steps);
      if (next !== doc) edit(next);
    },
    [doc, edit],
  );

  const onMove = useCallback((positions: Record<string, Position>) => edit(setPositions(doc, positions)), [doc, edit]);
  const onSelect = useCallback((id: string | null) => dispatch({ type: "select", id }), []);

  const refreshWorkflows = (): void => {
    api.workflows().then(setWorkflows, () => undefined);
  };

  const pollRunInfo = (path: string, tries: number): void => {
    api.runInfo(path).then(
      (info) => {
        setRunInfo(info);
        if (!info.dag_exists && tries > 0) setTimeout(() => pollRunInfo(path, tries - 1), 5000);
      },
      () => setRunInfo(null),
    );
  };

  const save = async (path: string, draft: boolean, etag: string | null): Promise<void> => {
    setBusy(true);
    try {
      const result = await api.save(path, documentForSave(doc), { etag: draft ? (draftEtags.current[path] ?? etag) : etag, draft });
      if (draft) draftEtags.current[result.path] = result.etag;
      setPending(null);
      if (draft && state.file && !state.file.draft) {
        // the opened file stays what Save writes (with its own ETag); the draft is a side copy
        setNotice({ kind: "success", text: `Draft saved as ${result.path} (the loader skips it); ${state.file.path} is unchanged` });
      } else {
        dispatch({ type: "saved", file: { path: result.path, etag: result.etag, writable: true, draft } });
        setNotice({ kind: "success", text: `Saved ${result.path}${draft ? " (draft: the loader skips it)" : ""}` });
      }
      refreshWorkflows();
      if (draft) setRunInfo(null);
      else pollRunInfo(result.path, 24);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      if (e.status === 409 && etag) setPending({ kind: "conflict" });
      else if (e.status === 409) setPending({ kind: "saveAs", draft, message: `${path} exists already: choose another name.` });
      else if (e.status === 403) {
        setWorkflows((w) => ({ ...w, writable: false }));
        setPending(null);
        setNotice({ kind: "error", text: "The workflows folder is read-only (or your user may not edit DAGs): use Download instead." });
      } else if (e.status === 422) {
        setPending(null);
        setNotice({ kind: "error", text: `Not saved: ${e.validationErrors.length || "some"} problem(s). Fix them, or save as a draft.` });
      } else setNotice({ kind: "error", text: `Not saved: ${e.message}` });
    } finally {
      setBusy(false);
    }
  };

  const onSave = (): void => {
    if (state.file && !state.file.draft) void save(state.file.path, false, state.file.etag);
    else openSaveAs(false);
  };
  const openSaveAs = (draft: boolean): void => {
    const base = state.file?.path.replace(".draft.", ".") ?? `${doc.id || "workflow"}.yaml`;
    setSaveName(draft ? draftName(base) : base);
    setPending({ kind: "saveAs", draft });
  };
  const onOpen = (path: string): void =>
    guard(() => {
      api.open(path).then(
        (opened) => {
          dispatch({ type: "load", doc: opened.document, file: { path: opened.path, etag: opened.etag, writable: opened.writable, draft: opened.path.includes(".draft.") } });
          setRunInfo(null);
          setNotice(null);
          setPending(null);
          setTimeout(() => setFitSignal((n) => n + 1), 50);
          if (!opened.document.layout) setNotice({ kind: "info", text: "This file has no layout yet: use Auto-layout to arrange it." });
        },
        (e: Error) => setNotice({ kind: "error", text: `Cannot open ${path}: ${e.message}` }),
      );
    });
  const onNew = (): void =>
    guard(() => {
      dispatch({ type: "load", doc: emptyDocument(uniqueWorkflowId(workflows)), file: null });
      setRunInfo(null);
      setNotice(null);
    });
  const onDownload = (): void => {
    api.preview(documentForSave(doc), state.file?.path ?? null).then(
      (p) => download(state.file?.path ?? `${doc.id}.yaml`, p.yaml),
      (e: Error) => setNotice({ kind: "error", text: `Download failed: ${e.message}` }),
    );
  };
  const onLayout = (): void => {
    edit(setPositions(doc, autoLayout(doc)));
    setTimeout(() => setFitSignal((n) => n + 1), 50);
  };

  const selectedStep = state.selected ? findStep(doc, state.selected) : undefined;
  const canSave = !busy && !validation.pending && errors.count === 0 && doc.steps.length > 0;

  return (
    <DesignerContext.Provider value={context}>
      <div className="mlp-editor" ref={root}>
        <Toolbar
          file={state.file}
          dirty={dirty}
          workflows={workflows}
          canSave={canSave}
          writable={writable}
          readOnly={readOnly}
          validating={validation.pending}
          errors={errors}
          canUndo={canUndo(state.history)}
          canRedo={canRedo(state.history)}
          runInfo={runInfo}
          linkTarget={embedded ? "_self" : "_top"}
          previewOpen={previewOpen}
          onNew={onNew}
          onOpen={onOpen}
          onSave={onSave}
          onSaveAs={() => openSaveAs(false)}
          onSaveDraft={() => openSaveAs(true)}
          onDownload={onDownload}
          onUndo={onUndo}
          onRedo={onRedo}
          onLayout={onLayout}
          onFit={() => setFitSignal((n) => n + 1)}
          onPreview={() => setPreviewOpen((o) => !o)}
          onShowError={(step) => onSelect(step)}
        />
        {notice ? (
          <div className={`mlp-notice mlp-notice--${notice.kind}`} data-testid="notice">
            {notice.text}
            <button type="button" className="mlp-link" onClick={() => setNotice(null)}>
              dismiss
            </button>
          </div>
        ) : null}
        {!writable && !readOnly ? (
          <div className="mlp-notice mlp-notice--info" data-testid="read-only-folder">
            The workflows folder {workflows.folder} is read-only here (a git bundle?): Download the file and commit it instead.
          </div>
        ) : null}
        {readOnly ? <div className="mlp-notice mlp-notice--info">Your user ({me.user}) may read but not edit DAGs: the designer is read-only.</div> : null}
        {validation.error ? <div className="mlp-notice mlp-notice--error">Validation is unavailable: {validation.error}</div> : null}
        <div className="mlp-body">
          <aside className="mlp-sidebar">
            <div className="mlp-tabs" role="tablist">
              {(["files", "steps", "params"] as const).map((t) => (
                <button type="button" role="tab" key={t} aria-selected={tab === t} className={`mlp-tab${tab === t ? " mlp-tab--on" : ""}`} onClick={() => setTab(t)} data-testid={`tab-${t}`}>
                  {t === "files" ? "Files" : t === "steps" ? "Steps" : "Parameters"}
                </button>
              ))}
            </div>
            {tab === "files" ? <CatalogBrowser catalog={catalog} error={catalogError} onAdd={(p) => addFromPayload(p)} onReload={loadCatalog} /> : null}
            {tab === "steps" ? <Palette onAdd={(p) => addFromPayload(p)} /> : null}
            {tab === "params" ? <ParamsPanel doc={doc} onChange={edit} /> : null}
          </aside>
          <main className="mlp-main">
            <Canvas
              doc={doc}
              selected={state.selected}
              readOnly={readOnly}
              fitSignal={fitSignal}
              onSelect={onSelect}
              onMove={onMove}
              onConnect={onConnect}
              onDelete={onDelete}
              onDrop={onDrop}
            />
            {doc.steps.length === 0 ? <div className="mlp-empty">Drag notebooks from Files, or step types from Steps, onto the canvas.</div> : null}
            {previewOpen ? <PreviewPanel preview={preview} onClose={() => setPreviewOpen(false)} /> : null}
          </main>
          <aside className="mlp-panel">
            {selectedStep ? (
              <PropertiesPanel key={selectedStep.id} doc={doc} step={selectedStep} onChange={edit} onSelect={onSelect} onDelete={(id) => dispatch({ type: "delete", ids: [id] })} />
            ) : (
              <DocumentPanel doc={doc} onChange={edit} />
            )}
          </aside>
        </div>
        {pending?.kind === "saveAs" ? (
          <Dialog
            title={pending.draft ? "Save as a draft" : "Save as"}
            testId="save-dialog"
            actions={[
              { label: "Cancel", onClick: () => setPending(null) },
              {
                label: pending.draft ? "Save draft" : "Save",
                primary: true,
                testId: "save-confirm",
                disabled: busy || !FILE_NAME_RE.test(saveName) || (!pending.draft && errors.count > 0),
                onClick: () => void save(saveName, pending.draft, null),
              },
            ]}
          >
            {pending.message ? <p className="mlp-error">{pending.message}</p> : null}
            <label className="mlp-field__label" htmlFor="mlp-save-name">
              File in {workflows.folder}
            </label>
            <input id="mlp-save-name" className="mlp-input" value={saveName} onChange={(e) => setSaveName(e.target.value)} data-testid="save-name" autoFocus />
            {!FILE_NAME_RE.test(saveName) ? <p className="mlp-help">A name like my_pipeline.yaml (letters, digits, _ . - and / for sub-folders).</p> : null}
            {pending.draft ? <p className="mlp-help">Drafts are saved even with problems; the loader does not build them.</p> : null}
          </Dialog>
        ) : null}
        {pending?.kind === "conflict" && state.file ? (
          <Dialog
            title="Someone else changed this file"
            testId="conflict-dialog"
            actions={[
              { label: "Cancel", onClick: () => setPending(null) },
              { label: "Reload theirs (drop my changes)", testId: "conflict-reload", onClick: () => onOpenForce(state.file?.path ?? "") },
              { label: "Save mine as…", primary: true, testId: "conflict-save-as", onClick: () => openSaveAs(false) },
            ]}
          >
            <p>
              {state.file.path} was saved by someone else after you opened it. Saving now would overwrite their work, so nothing was
              saved.
            </p>
          </Dialog>
        ) : null}
        {pending?.kind === "discard" ? (
          <Dialog
            title="Discard your changes?"
            actions={[
              { label: "Keep editing", onClick: () => setPending(null) },
              {
                label: "Discard",
                primary: true,
                onClick: () => {
                  const then = pending.then;
                  setPending(null);
                  then();
                },
              },
            ]}
          >
            <p>This workflow has changes that are not saved.</p>
          </Dialog>
        ) : null}
      </div>
    </DesignerContext.Provider>
  );

  function onOpenForce(path: string): void {
    setPending(null);
    api.open(path).then(
      (opened) => dispatch({ type: "load", doc: opened.document, file: { path: opened.path, etag: opened.etag, writable: opened.writable, draft: false } }),
      (e: Error) => setNotice({ kind: "error", text: `Cannot open ${path}: ${e.message}` }),
    );
  }
}

function uniqueWorkflowId(workflows: WorkflowList): string {
  const taken = new Set(workflows.workflows.map((w) => w.dag_id));
  for (let i = 1; ; i += 1) if (!taken.has(`my_workflow_${i}`)) return `my_workflow_${i}`;
}
