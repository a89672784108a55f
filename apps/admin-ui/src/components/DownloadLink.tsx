/**
 * Download a version. Without an API token a plain link streams the file straight to disk;
 * with one, a link cannot carry the Authorization header, so the bytes are fetched with it
 * and handed to the browser as a blob.
 */
import { useState, type ReactNode } from 'react';
import { authHeaders, getToken } from '../api.ts';

export function DownloadLink({ href, filename, className, label, children }: { href: string; filename: string; className: string; label?: string; children: ReactNode }) {
  const [error, setError] = useState<string>();
  const onClick = async (e: React.MouseEvent<HTMLAnchorElement>) => {
    if (getToken() === '') return; // the plain link does it
    e.preventDefault();
    setError(undefined);
    try {
      const res = await fetch(href, { headers: authHeaders() });
      if (!res.ok) throw new Error(`download refused (${res.status})`);
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = filename;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <>
      <a className={className} href={href} download={filename} aria-label={label} onClick={(e) => void onClick(e)}>
        {children}
      </a>
      {error ? (
        <span className="field-error" role="alert">
          {error}
        </span>
      ) : null}
    </>
  );
}
