/**
 * Documents (`#/documents`): the newest 100; one document (`#/documents/<id>`): its ingestion
 * live (`documentProgress`: chunks stored, status) and its entities as the extraction finds them
 * (`entityDiscovered`), both resumed with their cursors; clicking an entity draws its neighbours
 * (`neighbors`), clicking a neighbour re-centres on it.
 */
import { useEffect, useState } from 'preact/hooks';
import { liveSubscription, request } from '../connection.ts';
import { NeighborGraph } from '../charts/neighborGraph.tsx';
import { clock } from '../format.ts';
import { DOCUMENT, DOCUMENT_PROGRESS, DOCUMENTS, ENTITY_DISCOVERED, NEIGHBORS, type DocumentSummary, type EntityView } from '../queries.ts';

/** The documents list. */
export function DocumentsView() {
  const [docs, setDocs] = useState<DocumentSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    const load = () =>
      request<{ documents: { edges: { node: DocumentSummary }[] } }>(DOCUMENTS, { first: 100 })
        .then((data) => alive && setDocs(data.documents.edges.map((e) => e.node)))
        .catch((e: Error) => alive && setError(e.message));
    void load();
    const timer = setInterval(load, 5000);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, []);
  return (
    <section class="panel">
      <h1>Documents</h1>
      {error && <p class="error">{error}</p>}
      {!docs ? (
        <p class="muted">loading…</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Title</th>
              <th>Status</th>
              <th>Chunks</th>
              <th>Characters</th>
              <th>Run</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {docs.map((d) => (
              <tr key={d.id} data-testid="document-row" data-document-id={d.id} data-status={d.status}>
                <td>
                  <a href={`#/documents/${encodeURIComponent(d.id)}`}>{d.title}</a>
                </td>
                <td>
                  <span class={`pill status-${d.status}`}>{d.status}</span>
                </td>
                <td class="num">{d.chunkCount}</td>
                <td class="num">{d.charCount.toLocaleString()}</td>
                <td>{d.runId && <a class="mono" href={`#/runs/${encodeURIComponent(d.runId)}`}>{d.runId.slice(0, 8)}</a>}</td>
                <td class="mono">{clock(d.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {docs && docs.length === 0 && <p class="muted">No documents yet.</p>}
    </section>
  );
}

interface DocumentDetail extends DocumentSummary {
  source: string;
  corpusFile: string | null;
  sizeBytes: number;
  updatedAt: string;
  failure: { code: string; reason: string } | null;
}

/** One document with its progress, entities and an entity's neighbours. */
export function DocumentView({ documentId }: { documentId: string }) {
  const [doc, setDoc] = useState<DocumentDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ eventType: string; chunksStored: number; status: string; chunkCount: number } | null>(null);
  const [entities, setEntities] = useState<EntityView[]>([]);
  const [center, setCenter] = useState<EntityView | null>(null);
  const [neighbors, setNeighbors] = useState<{ entity: EntityView; weight: number }[] | null>(null);
  const [graphError, setGraphError] = useState<string | null>(null);

  useEffect(() => {
    let alive = true;
    request<{ document: DocumentDetail | null }>(DOCUMENT, { id: documentId })
      .then((data) => alive && setDoc(data.document))
      .catch((e: Error) => alive && setError(e.message));
    const progressSub = liveSubscription<{ documentProgress: { cursor: string; eventType: string; occurredAt: string; chunksStored: number; document: { status: string; chunkCount: number } } }>({
      query: DOCUMENT_PROGRESS,
      variables: { documentId },
      cursorOf: (d) => d.documentProgress.cursor,
      occurredAtOf: (d) => Date.parse(d.documentProgress.occurredAt),
      onData: ({ documentProgress: p }) => setProgress({ eventType: p.eventType, chunksStored: p.chunksStored, status: p.document.status, chunkCount: p.document.chunkCount }),
    });
    const seen = new Set<string>();
    let pending: EntityView[] = [];
    let flush: ReturnType<typeof setTimeout> | undefined;
    const entitySub = liveSubscription<{ entityDiscovered: { cursor: string; occurredAt: string; entity: EntityView } }>({
      query: ENTITY_DISCOVERED,
      variables: { documentId },
      cursorOf: (d) => d.entityDiscovered.cursor,
      occurredAtOf: (d) => Date.parse(d.entityDiscovered.occurredAt),
      onData: ({ entityDiscovered: { entity } }) => {
        if (seen.has(entity.id)) return;
        seen.add(entity.id);
        pending.push(entity);
        // Extraction finds hundreds at once: render them in batches.
        flush ??= setTimeout(() => {
          flush = undefined;
          const batch = pending;
          pending = [];
          if (alive) setEntities((list) => [...list, ...batch]);
        }, 100);
      },
    });
    return () => {
      alive = false;
      clearTimeout(flush);
      progressSub.dispose();
      entitySub.dispose();
    };
  }, [documentId]);

  const select = (entity: EntityView) => {
    setCenter(entity);
    setNeighbors(null);
    setGraphError(null);
    request<{ entity: EntityView | null; neighbors: { entity: EntityView; weight: number }[] }>(NEIGHBORS, { id: entity.id, first: 24 })
      .then((data) => {
        if (data.entity) setCenter(data.entity);
        setNeighbors(data.neighbors);
      })
      .catch((e: Error) => setGraphError(e.message));
  };

  const byMentions = [...entities].sort((a, b) => b.mentionCount - a.mentionCount || a.name.localeCompare(b.name));
  return (
    <div class="detail">
      <section class="panel" data-testid="document-detail" data-document-id={documentId}>
        <h1>{doc?.title ?? documentId}</h1>
        {error && <p class="error">{error}</p>}
        {doc && (
          <dl class="facts">
            <dt>Status</dt>
            <dd>
              <span class={`pill status-${progress?.status ?? doc.status}`} data-testid="document-status">
                {progress?.status ?? doc.status}
              </span>
            </dd>
            <dt>Chunks</dt>
            <dd data-testid="document-chunks">
              {progress ? progress.chunksStored : doc.chunkCount} / {progress?.chunkCount ?? doc.chunkCount}
            </dd>
            <dt>Source</dt>
            <dd>{doc.corpusFile ?? doc.source}</dd>
            <dt>Size</dt>
            <dd>
              {doc.sizeBytes.toLocaleString()} bytes, {doc.charCount.toLocaleString()} characters
            </dd>
            <dt>Run</dt>
            <dd>{doc.runId ? <a class="mono" href={`#/runs/${encodeURIComponent(doc.runId)}`}>{doc.runId}</a> : '—'}</dd>
            {doc.failure && (
              <>
                <dt>Failure</dt>
                <dd class="error">
                  {doc.failure.code}: {doc.failure.reason}
                </dd>
              </>
            )}
          </dl>
        )}
        {progress && (
          <div class="progress" title={progress.eventType}>
            <div style={{ width: `${progress.chunkCount ? (100 * progress.chunksStored) / progress.chunkCount : 0}%` }} />
          </div>
        )}
      </section>
      <div class="split">
        <section class="panel entities">
          <h2>
            Entities <span class="muted" data-testid="entity-count">{entities.length}</span>
          </h2>
          <ul class="entity-list">
            {byMentions.map((e) => (
              <li key={e.id}>
                <button class={`entity kind-${e.kind} ${center?.id === e.id ? 'selected' : ''}`} data-testid="entity" data-entity-id={e.id} onClick={() => select(e)}>
                  {e.name} <span class="muted">{e.mentionCount}</span>
                </button>
              </li>
            ))}
          </ul>
          {entities.length === 0 && <p class="muted">None found yet.</p>}
        </section>
        <section class="panel">
          <h2>Neighbours {center && <span class="muted">of {center.name}</span>}</h2>
          {graphError && <p class="error">{graphError}</p>}
          {center && neighbors && <NeighborGraph center={center} neighbors={neighbors} onSelect={select} />}
          {center && !neighbors && !graphError && <p class="muted">loading…</p>}
          {!center && <p class="muted">Click an entity to see its neighbours.</p>}
        </section>
      </div>
    </div>
  );
}
