// Ctrl+Z / Ctrl+Shift+Z (and Ctrl+Y) for the designer, except while typing in a field (the
// field's own undo applies there).
import { type RefObject, useEffect } from "react";

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return !!el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
}

export function useUndoKeys(root: RefObject<HTMLElement | null>, onUndo: () => void, onRedo: () => void): void {
  useEffect(() => {
    const handler = (event: KeyboardEvent): void => {
      if (!(event.ctrlKey || event.metaKey) || typing(event.target)) return;
      if (root.current && event.target instanceof Node && !root.current.contains(event.target) && event.target !== document.body) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) onUndo();
      else if ((key === "z" && event.shiftKey) || key === "y") onRedo();
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", handler);
    return () => window.removeEventListener("keydown", handler);
  }, [root, onUndo, onRedo]);
}
