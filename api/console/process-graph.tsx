/**
 * The process tree of a quick report drawn as an SVG graph on the server:
 * the chain that led to the detected file (section 2) and the processes it
 * started (section 3), one row per generation, edges from parent to child.
 * No script: the picture is in the page, with a title and a text list for
 * screen readers.
 */
import type { QuickReport } from '../../core/contracts.js';

export interface GraphNode {
  pg: string;
  parent: string | undefined;
  label: string;
  pid: string;
  detected: boolean;
}

/** The nodes of the report's process tree (chain then descendants), deduplicated by process GUID. */
export function processNodes(report: QuickReport): GraphNode[] {
  const nodes = new Map<string, GraphNode>();
  const detectedPath = String(report.detection.event.path ?? '').toLowerCase();
  for (const id of ['chain', 'descendants'] as const) {
    const section = report.sections.find((s) => s.id === id);
    for (const item of section?.items ?? []) {
      const e = item.event;
      const pg = typeof e.pg === 'string' ? e.pg : undefined;
      if (pg === undefined || nodes.has(pg.toLowerCase())) continue;
      const image = typeof e.image === 'string' ? e.image : '?';
      const parentPg = typeof e.ppg === 'string' ? e.ppg.toLowerCase() : undefined;
      nodes.set(pg.toLowerCase(), {
        pg: pg.toLowerCase(),
        parent: parentPg,
        label: image.split(/[\\/]/).pop() ?? image,
        pid: e.pid === undefined ? '' : String(e.pid),
        detected: detectedPath !== '' && image.toLowerCase() === detectedPath,
      });
    }
  }
  return [...nodes.values()];
}

const BOX_W = 180;
const BOX_H = 36;
const GAP_X = 24;
const GAP_Y = 40;

/** Positions: depth from the roots (nodes whose parent is not in the graph), siblings side by side. */
export function layoutNodes(nodes: GraphNode[]): { node: GraphNode; x: number; y: number }[] {
  const byPg = new Map(nodes.map((n) => [n.pg, n]));
  const depth = new Map<string, number>();
  const depthOf = (n: GraphNode, guard = 0): number => {
    const known = depth.get(n.pg);
    if (known !== undefined) return known;
    const parent = n.parent === undefined ? undefined : byPg.get(n.parent);
    const d = parent === undefined || guard > 64 ? 0 : depthOf(parent, guard + 1) + 1;
    depth.set(n.pg, d);
    return d;
  };
  const rows: GraphNode[][] = [];
  for (const n of nodes) (rows[depthOf(n)] ??= []).push(n);
  const out: { node: GraphNode; x: number; y: number }[] = [];
  rows.forEach((row, d) => row.forEach((node, i) => out.push({ node, x: 10 + i * (BOX_W + GAP_X), y: 10 + d * (BOX_H + GAP_Y) })));
  return out;
}

/** The SVG of the report's process tree, or a short text when there is no process to draw. */
export function ProcessGraph({ report, title, desc }: { report: QuickReport; title: string; desc: string }) {
  const placed = layoutNodes(processNodes(report));
  if (placed.length === 0) return <p>-</p>;
  const at = new Map(placed.map((p) => [p.node.pg, p]));
  const width = Math.max(...placed.map((p) => p.x)) + BOX_W + 10;
  const height = Math.max(...placed.map((p) => p.y)) + BOX_H + 10;
  return (
    <figure>
      <svg class="process-graph" id="process-graph" role="img" aria-labelledby="pg-title pg-desc" viewBox={`0 0 ${width} ${height}`} width={width} height={height} xmlns="http://www.w3.org/2000/svg">
        <title id="pg-title">{title}</title>
        <desc id="pg-desc">{desc}</desc>
        {placed.map((p) => {
          const parent = p.node.parent === undefined ? undefined : at.get(p.node.parent);
          return parent === undefined ? null : <line x1={parent.x + BOX_W / 2} y1={parent.y + BOX_H} x2={p.x + BOX_W / 2} y2={p.y} />;
        })}
        {placed.map((p) => (
          <g data-pg={p.node.pg}>
            <rect x={p.x} y={p.y} width={BOX_W} height={BOX_H} rx={4} class={p.node.detected ? 'detected' : undefined} />
            <text x={p.x + 8} y={p.y + 15}>
              {p.node.label.length > 26 ? `${p.node.label.slice(0, 25)}…` : p.node.label}
            </text>
            <text x={p.x + 8} y={p.y + 30}>{`pid ${p.node.pid}`}</text>
          </g>
        ))}
      </svg>
      <figcaption>
        <ul>
          {placed.map((p) => (
            <li>
              {p.node.label} (pid {p.node.pid})
              {p.node.parent !== undefined && at.has(p.node.parent) ? ` ← ${at.get(p.node.parent)!.node.label}` : ''}
              {p.node.detected ? ' ★' : ''}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
