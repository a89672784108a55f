/** "Are you sure" with a required reason: what the fleet will get is spelled out in `children`. */
import { useState, type ReactNode } from 'react';
import { ErrorBox, FieldError, Modal, fieldMessage } from './ui.tsx';

export function ConfirmDialog({
  open,
  title,
  confirmLabel,
  danger,
  requireReason = true,
  onConfirm,
  onClose,
  children,
}: {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  requireReason?: boolean;
  onConfirm: (reason: string) => Promise<unknown>;
  onClose: () => void;
  children: ReactNode;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [touched, setTouched] = useState(false);
  const missing = requireReason && reason.trim() === '';
  const close = () => {
    setReason('');
    setError(undefined);
    setTouched(false);
    onClose();
  };
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (missing) return;
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm(reason.trim());
      close();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const reasonError = (touched && missing ? 'Give a reason: it goes to the audit log.' : undefined) ?? fieldMessage(error, 'reason');
  return (
    <Modal open={open} title={title} onClose={close}>
      <form onSubmit={submit} className="confirm">
        <div className="confirm-what">{children}</div>
        <label htmlFor="confirm-reason">Reason{requireReason ? '' : ' (optional)'}</label>
        <textarea
          id="confirm-reason"
          rows={2}
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          aria-invalid={reasonError !== undefined}
          aria-describedby="confirm-reason-error"
          placeholder="e.g. bad rows in v42"
          autoFocus
        />
        <FieldError id="confirm-reason-error" message={reasonError} />
        {error !== undefined && fieldMessage(error, 'reason') === undefined ? <ErrorBox error={error} title="The server refused" /> : null}
        <div className="actions">
          <button type="button" className="btn" onClick={close}>
            Cancel
          </button>
          <button type="submit" className={danger ? 'btn btn-danger' : 'btn btn-primary'} disabled={busy}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </Modal>
  );
}
