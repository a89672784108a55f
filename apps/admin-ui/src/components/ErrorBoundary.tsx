/** Anything a page throws while rendering shows as a readable message, never a blank page. */
import { Component, type ErrorInfo, type ReactNode } from 'react';
import { ErrorBox } from './ui.tsx';

export class ErrorBoundary extends Component<{ children: ReactNode; resetKey: string }, { error: unknown; key: string }> {
  override state: { error: unknown; key: string } = { error: undefined, key: '' };

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  static getDerivedStateFromProps(props: { resetKey: string }, state: { error: unknown; key: string }) {
    // Navigating elsewhere clears the error.
    return props.resetKey !== state.key ? { error: undefined, key: props.resetKey } : null;
  }

  override componentDidCatch(error: unknown, info: ErrorInfo): void {
    console.error('admin-ui: a page failed to render', error, info.componentStack);
  }

  override render() {
    if (this.state.error !== undefined) return <ErrorBox error={this.state.error} title="This page failed to render" onRetry={() => this.setState({ error: undefined })} />;
    return this.props.children;
  }
}
