// The editor's state: the document with its undo history, the file it came from, the selection.
import type { WorkflowDocument } from "../types";
import { removeSteps } from "./document";
import { createHistory, type History, push, redo, undo } from "./history";

export interface OpenFile {
  /** Relative to the workflows folder. */
  path: string;
  etag: string | null;
  writable: boolean;
  draft: boolean;
}

export interface EditorState {
  history: History<WorkflowDocument>;
  file: OpenFile | null;
  /** The document as last loaded or saved: the editor is dirty when the present differs. */
  saved: WorkflowDocument | null;
  selected: string | null;
}

export type EditorAction =
  | { type: "load"; doc: WorkflowDocument; file: OpenFile | null }
  | { type: "edit"; doc: WorkflowDocument; key?: string }
  | { type: "undo" }
  | { type: "redo" }
  | { type: "select"; id: string | null }
  | { type: "delete"; ids: string[] }
  | { type: "saved"; file: OpenFile };

export function initialEditor(doc: WorkflowDocument): EditorState {
  return { history: createHistory(doc), file: null, saved: null, selected: null };
}

function keepSelection(state: EditorState, doc: WorkflowDocument): string | null {
  return state.selected !== null && doc.steps.some((s) => s.id === state.selected) ? state.selected : null;
}

export function editorReducer(state: EditorState, action: EditorAction): EditorState {
  switch (action.type) {
    case "load":
      return { history: createHistory(action.doc), file: action.file, saved: action.file ? action.doc : null, selected: null };
    case "edit":
      return { ...state, history: push(state.history, action.doc, action.key ?? null) };
    case "undo": {
      const history = undo(state.history);
      return { ...state, history, selected: keepSelection(state, history.present) };
    }
    case "redo": {
      const history = redo(state.history);
      return { ...state, history, selected: keepSelection(state, history.present) };
    }
    case "select":
      return { ...state, selected: action.id };
    case "delete": {
      if (action.ids.length === 0) return state;
      const doc = removeSteps(state.history.present, action.ids);
      return { ...state, history: push(state.history, doc), selected: keepSelection(state, doc) };
    }
    case "saved":
      return { ...state, file: action.file, saved: state.history.present };
  }
}

export const isDirty = (state: EditorState): boolean => state.saved !== state.history.present;
