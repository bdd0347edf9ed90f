// A small in-page dialog (the iframe mode's sandbox has no window.confirm/prompt).
import type { ReactElement, ReactNode } from "react";

export interface DialogAction {
  label: string;
  onClick(): void;
  primary?: boolean;
  testId?: string;
  disabled?: boolean;
}

export function Dialog({ title, children, actions, testId }: { title: string; children: ReactNode; actions: DialogAction[]; testId?: string }): ReactElement {
  return (
    <div className="mlp-dialog__backdrop">
      <div className="mlp-dialog" role="dialog" aria-label={title} data-testid={testId}>
        <div className="mlp-dialog__title">{title}</div>
        <div className="mlp-dialog__body">{children}</div>
        <div className="mlp-dialog__actions">
          {actions.map((a) => (
            <button
              type="button"
              key={a.label}
              className={`mlp-btn${a.primary ? " mlp-btn--primary" : ""}`}
              onClick={a.onClick}
              disabled={a.disabled}
              data-testid={a.testId}
            >
              {a.label}
            </button>
          ))}
        </div>
      </div>
    </div>
  );
}
