// Live updates: one graphql-ws client (graphql-transport-ws) subscribed to
// progress changes and sync outcomes. It connects eagerly and retries
// forever, so the dashboard reconnects by itself after a server restart.
import { createClient, type Client } from 'graphql-ws';
import { useEffect, useRef, useState } from 'react';
import type { DataSourceState, Status } from './api';

export interface ProgressEvent {
  objectiveId: string;
  keyResultId: string | null;
  value: number | null;
  progress: number | null;
  status: Status;
  source: string;
  at: string;
}

export interface SyncEvent {
  dataSourceId: string;
  objectiveId: string | null;
  keyResultId: string | null;
  state: DataSourceState;
  value: number | null;
  changed: boolean;
  error: { code: string; message: string } | null;
  jobId: string | null;
  at: string;
}

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LiveHandlers {
  progress: (event: ProgressEvent) => void;
  sync: (event: SyncEvent) => void;
  /** Connected again after a drop: events may have been missed, so refetch. */
  reconnected: () => void;
  /** The server refused the token (close code 4403). */
  refused: () => void;
}

const PROGRESS = `subscription Progress {
  progressChanged { objectiveId keyResultId value progress status source at }
}`;

const SYNCED = `subscription Synced {
  dataSourceSynced { dataSourceId objectiveId keyResultId state value changed error { code message } jobId at }
}`;

function socketUrl(): string {
  const url = new URL('/graphql', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

/** Subscribes while `token` is set; returns the connection state for the indicator. */
export function useLiveUpdates(token: string | null, handlers: LiveHandlers): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;

  useEffect(() => {
    if (!token) return;
    let connectedBefore = false;
    let disposed = false;
    const client: Client = createClient({
      url: socketUrl(),
      connectionParams: { Authorization: `Bearer ${token}` },
      lazy: false,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      // 1 s, 2 s, 4 s … capped at 10 s, with jitter.
      retryWait: (retries) =>
        new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 1000 * 2 ** retries) + Math.random() * 500)),
      on: {
        connected: () => {
          setState('live');
          if (connectedBefore) handlersRef.current.reconnected();
          connectedBefore = true;
        },
        closed: (event) => {
          if (disposed) return;
          setState(connectedBefore ? 'reconnecting' : 'connecting');
          if ((event as CloseEvent | undefined)?.code === 4403) handlersRef.current.refused();
        },
      },
    });
    const subscribe = <T,>(query: string, field: string, deliver: (value: T) => void) =>
      client.subscribe<Record<string, T>>(
        { query },
        {
          next: (message) => {
            const value = message.data?.[field];
            if (value) deliver(value);
          },
          // With infinite retries the client resubscribes after a reconnect;
          // an error here is an operation error, not a dropped socket.
          error: () => {},
          complete: () => {},
        },
      );
    const stopProgress = subscribe<ProgressEvent>(PROGRESS, 'progressChanged', (e) => handlersRef.current.progress(e));
    const stopSynced = subscribe<SyncEvent>(SYNCED, 'dataSourceSynced', (e) => handlersRef.current.sync(e));
    return () => {
      disposed = true;
      stopProgress();
      stopSynced();
      void client.dispose();
    };
  }, [token]);

  return state;
}

export function LiveIndicator({ state }: { state: LiveState }) {
  const text = state === 'live' ? 'Live' : state === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  return (
    <span className={`live live-${state}`} role="status" title="Live updates over WebSocket">
      <span className="live-dot" aria-hidden="true" />
      {text}
    </span>
  );
}
