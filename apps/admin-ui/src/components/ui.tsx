/** Small building blocks: loading and error states, badges, dialogs, field errors. */
import { useEffect, useId, useRef, type ReactNode } from 'react';
import { ApiError } from '../api.ts';

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  );
}

/** A readable error: the server's message (and field), or the thrown error's text. */
export function ErrorBox({ error, title, onRetry }: { error: unknown; title?: string; onRetry?: () => void }) {
  const err = error instanceof ApiError ? error : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="error-box" role="alert">
      <strong>{title ?? (err?.isAuth ? 'Not allowed' : 'Something went wrong')}</strong>
      <p>{message}</p>
      {err?.isAuth ? <p className="muted">Set an API token with the right role (top right, "API token").</p> : null}
      {err?.field ? <p className="muted">Field: {err.field}</p> : null}
      {onRetry ? (
        <button type="button" className="btn" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}

export function Badge({ kind, children, title }: { kind: 'latest' | 'pinned' | 'rolling' | 'deleted' | 'neutral' | 'ok' | 'warn' | 'bad'; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${kind}`} title={title}>
      {children}
    </span>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** A modal dialog on the native <dialog> element (focus trap and Escape for free). */
export function Modal({ open, title, onClose, children, wide }: { open: boolean; title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (d === null) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className={wide ? 'modal modal-wide' : 'modal'} aria-labelledby={titleId} onClose={onClose} onCancel={onClose}>
      {open ? (
        <>
          <header className="modal-head">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="icon-btn" aria-label="Close" onClick={onClose}>
              ×
            </button>
          </header>
          <div className="modal-body">{children}</div>
        </>
      ) : null}
    </dialog>
  );
}

/** A field error under an input; `id` is referenced by the input's aria-describedby. */
export function FieldError({ id, message }: { id: string; message: string | undefined }) {
  if (message === undefined) return null;
  return (
    <p id={id} className="field-error" role="alert">
      {message}
    </p>
  );
}

/** The error of `error` if it concerns `field` (server errors name their field). */
export function fieldMessage(error: unknown, ...fields: string[]): string | undefined {
  if (!(error instanceof ApiError) || error.field === undefined) return undefined;
  return fields.some((f) => error.field === f || error.field?.startsWith(`${f}.`) || error.field?.startsWith(`${f}[`)) ? error.message : undefined;
}
