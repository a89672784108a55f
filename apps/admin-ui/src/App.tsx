/** Layout (header, navigation, identity / token) and routes. */
import { useEffect, useState } from 'react';
import { Link, NavLink, Route, Routes, useLocation } from 'react-router';
import { ApiError, getActor, getToken, onAuthError, setActor, setToken } from './api.ts';
import { ErrorBoundary } from './components/ErrorBoundary.tsx';
import { Modal } from './components/ui.tsx';
import { AuditPage } from './pages/AuditPage.tsx';
import { DiffPage } from './pages/DiffPage.tsx';
import { TopicPage } from './pages/TopicPage.tsx';
import { TopicsPage } from './pages/TopicsPage.tsx';
import { VersionPage } from './pages/VersionPage.tsx';

function IdentityDialog({ open, onClose, authError }: { open: boolean; onClose: () => void; authError?: ApiError }) {
  const [actor, setActorText] = useState(getActor());
  const [token, setTokenText] = useState(getToken());
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setActor(actor.trim());
    setToken(token.trim());
    onClose();
    window.location.reload();
  };
  return (
    <Modal open={open} title="Who you are" onClose={onClose}>
      <form onSubmit={save} className="form">
        {authError ? (
          <p className="error-inline" role="alert">
            The server answered {authError.status}: {authError.message}
          </p>
        ) : null}
        <label htmlFor="id-actor">Your name (recorded in the audit log)</label>
        <input id="id-actor" value={actor} onChange={(e) => setActorText(e.target.value)} placeholder="e.g. alice" autoComplete="username" />
        <label htmlFor="id-token">API token</label>
        <input id="id-token" type="password" value={token} onChange={(e) => setTokenText(e.target.value)} placeholder="sent as Authorization: Bearer …" autoComplete="off" />
        <p className="muted small">Kept in this browser only (localStorage). Leave empty when the server needs no token.</p>
        <div className="actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary">
            Save
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function App() {
  const [identityOpen, setIdentityOpen] = useState(false);
  const [authError, setAuthError] = useState<ApiError>();
  useEffect(
    () =>
      onAuthError((err) => {
        setAuthError(err);
      }),
    [],
  );
  const actor = getActor();
  const location = useLocation();
  return (
    <div className="shell">
      <header className="topbar">
        <Link to="/" className="brand" aria-label="Quire home">
          <span className="logo" aria-hidden="true">
            Q
          </span>
          Quire <span className="brand-sub">admin</span>
        </Link>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Topics
          </NavLink>
          <NavLink to="/audit">Audit log</NavLink>
        </nav>
        <div className="topbar-right">
          <button type="button" className={authError ? 'btn btn-small btn-warn' : 'btn btn-small btn-ghost'} onClick={() => setIdentityOpen(true)}>
            <span aria-hidden="true">●</span> {actor || 'set your name'} · API token{getToken() ? ' ✓' : ''}
          </button>
        </div>
      </header>
      {authError ? (
        <div className="banner banner-warn" role="alert">
          The server refused a request ({authError.status}): {authError.message}.{' '}
          <button type="button" className="linklike" onClick={() => setIdentityOpen(true)}>
            Enter an API token
          </button>
        </div>
      ) : null}
      <main className="content">
        <ErrorBoundary resetKey={location.pathname}>
        <Routes>
          <Route path="/" element={<TopicsPage />} />
          <Route path="/audit" element={<AuditPage />} />
          <Route path="/topics/:name/versions/:version" element={<VersionPage />} />
          <Route path="/topics/:name/diff" element={<DiffPage />} />
          <Route path="/topics/:name/:tab?" element={<TopicPage />} />
          <Route path="*" element={<p>No such page. <Link to="/">Back to topics</Link></p>} />
        </Routes>
        </ErrorBoundary>
      </main>
      <IdentityDialog open={identityOpen} onClose={() => setIdentityOpen(false)} authError={authError} />
    </div>
  );
}
