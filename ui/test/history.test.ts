import { describe, expect, it } from "vitest";
import { editorReducer, initialEditor, isDirty } from "../src/logic/editor";
import { canRedo, canUndo, createHistory, HISTORY_LIMIT, push, redo, undo } from "../src/logic/history";
import { quickstart } from "./fixtures";

describe("undo/redo stack", () => {
  it("undoes and redoes in order, and a new edit drops the redo branch", () => {
    let h = createHistory(1);
    h = push(h, 2);
    h = push(h, 3);
    h = undo(h);
    expect(h.present).toBe(2);
    expect(canRedo(h)).toBe(true);
    h = undo(h);
    h = undo(h); // nothing more to undo: unchanged
    expect(h.present).toBe(1);
    expect(canUndo(h)).toBe(false);
    h = redo(h);
    expect(h.present).toBe(2);
    h = push(h, 9);
    expect(canRedo(h)).toBe(false);
    expect(h.past).toEqual([1, 2]);
  });

  it("coalesces edits with the same key (typing in one field) into one undo step", () => {
    let h = createHistory("");
    h = push(h, "a", "train.notebook");
    h = push(h, "ab", "train.notebook");
    h = push(h, "abc", "train.notebook");
    h = push(h, "abc!", "train.timeout");
    expect(undo(h).present).toBe("abc");
    expect(undo(undo(h)).present).toBe("");
  });

  it("a key does not coalesce across an undo", () => {
    let h = push(createHistory(0), 1, "k");
    h = undo(h);
    h = push(h, 2, "k");
    expect(h.past).toEqual([0]);
  });

  it("keeps at most HISTORY_LIMIT states", () => {
    let h = createHistory(0);
    for (let i = 1; i <= HISTORY_LIMIT + 50; i += 1) h = push(h, i);
    expect(h.past.length).toBe(HISTORY_LIMIT);
    expect(h.past[0]).toBe(50);
  });

  it("the editor deletes steps, undoes the delete, and tracks dirtiness against the saved document", () => {
    const doc = quickstart();
    let s = editorReducer(initialEditor(doc), { type: "load", doc, file: { path: "q.yaml", etag: "1", writable: true, draft: false } });
    expect(isDirty(s)).toBe(false);
    s = editorReducer(s, { type: "select", id: "train" });
    s = editorReducer(s, { type: "delete", ids: ["train"] });
    expect(s.history.present.steps.map((x) => x.id)).toEqual(["prepare", "evaluate", "report"]);
    expect(s.history.present.steps[1]?.parameters).not.toHaveProperty("model_path");
    expect(s.selected).toBeNull();
    expect(isDirty(s)).toBe(true);
    s = editorReducer(s, { type: "undo" });
    expect(s.history.present).toBe(doc);
    expect(isDirty(s)).toBe(false);
  });
});
