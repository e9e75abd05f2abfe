/**
 * Static assets of the console, served from memory with long-lived cache
 * headers: each URL carries the content's hash (`?v=`), so a new version is
 * a new URL and browsers may keep the old one for a year. Third-party files
 * (htmx, uPlot) are read from node_modules once at start-up; the console's
 * own stylesheet and script are the constants below (no build chain, no
 * inline code: the Content Security Policy forbids it).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Hono } from 'hono';
import { setSecurityHeaders } from './security.js';

/** The console's stylesheet: plain CSS, high contrast, visible focus, works without JS; reports print with it too. */
export const CONSOLE_CSS = `
:root { --fg:#1a1a1a; --bg:#fafafa; --muted:#555; --line:#ccc; --accent:#0b57d0; --black:#111; --gray:#8a6d00; --white:#2e7d32; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font-family: "Noto Sans CJK JP", "Noto Sans JP", system-ui, sans-serif; color:var(--fg); background:var(--bg); line-height:1.5; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #f4b400; outline-offset: 2px; }
.skip { position:absolute; left:-9999px; top:0; background:#fff; padding:.5rem; z-index:10; }
.skip:focus { left:.5rem; }
header.top { display:flex; gap:1rem; align-items:center; justify-content:space-between; padding:.5rem 1rem; background:#10243e; color:#fff; flex-wrap:wrap; }
header.top a, header.top button.link { color:#fff; }
header.top .brand { font-weight:bold; color:#fff; text-decoration:none; }
nav.main ul { list-style:none; display:flex; gap:.25rem 1rem; margin:0; padding:0; flex-wrap:wrap; }
nav.main a[aria-current="page"] { font-weight:bold; text-decoration:underline; }
.who { display:flex; gap:.75rem; align-items:center; }
main { padding:1rem; max-width:1400px; margin:0 auto; }
h1 { font-size:1.5rem; margin:.25rem 0 1rem; }
h2 { font-size:1.2rem; margin:1.5rem 0 .5rem; }
table { border-collapse:collapse; width:100%; background:#fff; font-size:.9rem; }
th, td { border:1px solid var(--line); padding:.3rem .5rem; text-align:left; vertical-align:top; }
th { background:#eef1f5; }
caption { text-align:left; font-weight:bold; padding:.25rem 0; }
form.filters { display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:flex-end; margin-bottom:1rem; }
form.filters label, form.stack label { display:flex; flex-direction:column; font-size:.85rem; }
form.stack { display:flex; flex-direction:column; gap:.75rem; max-width:28rem; }
input, select, textarea, button { font:inherit; padding:.3rem .5rem; }
button { cursor:pointer; border:1px solid #444; background:#fff; border-radius:4px; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button.danger { background:var(--bad); color:#fff; border-color:var(--bad); }
button.link { background:none; border:none; text-decoration:underline; padding:0; }
.verdict { display:inline-block; padding:0 .5rem; border-radius:3px; font-weight:bold; color:#fff; }
.verdict-black { background:var(--black); } .verdict-gray { background:var(--gray); } .verdict-white { background:var(--white); }
.notice { padding:.5rem 1rem; border-left:4px solid var(--accent); background:#e8f0fe; margin-bottom:1rem; }
.error { padding:.5rem 1rem; border-left:4px solid var(--bad); background:#fce8e6; margin-bottom:1rem; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap:1rem; }
.card { background:#fff; border:1px solid var(--line); padding:.75rem 1rem; border-radius:6px; }
.card .figure { font-size:1.8rem; font-weight:bold; }
.grid2 { display:grid; grid-template-columns: repeat(auto-fit, minmax(28rem, 1fr)); gap:1rem; }
.chart { background:#fff; border:1px solid var(--line); padding:.5rem; min-height:240px; }
section.report-section { background:#fff; border:1px solid var(--line); padding:.5rem 1rem; margin-bottom:.75rem; border-radius:6px; }
svg.process-graph { background:#fff; border:1px solid var(--line); max-width:100%; height:auto; }
svg.process-graph rect { fill:#eef1f5; stroke:#333; }
svg.process-graph rect.detected { fill:#fce8e6; stroke:var(--bad); stroke-width:2; }
svg.process-graph text { font-size:12px; font-family: inherit; }
svg.process-graph line { stroke:#333; stroke-width:1.5; }
dl.facts { display:grid; grid-template-columns: max-content 1fr; gap:.25rem 1rem; }
dl.facts dt { font-weight:bold; }
.mono { font-family: ui-monospace, monospace; font-size:.85rem; word-break:break-all; }
.visually-hidden { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
.pager { display:flex; gap:1rem; margin-top:.75rem; }
/* Reports: the console's report page and the PDF are one document with this one sheet; print drops the chrome. */
.report-meta { color:var(--muted); }
td.n { text-align:right; }
@media print {
  body { background:#fff; font-size:10.5pt; }
  header.top, .skip, .no-print { display:none; }
  main { max-width:none; padding:0; }
  h2 { break-after:avoid; }
  tr, section.report-section { break-inside:avoid; }
  .verdict { color:#000; background:none; border:1px solid #000; }
}
`;

/**
 * The console's script: draws the dashboard charts with uPlot from the JSON
 * each chart's page embeds (a data block, not code), and asks for
 * confirmation on forms marked data-confirm. Pages work without it.
 */
const CONSOLE_JS = `
(function () {
  'use strict';
  function drawCharts() {
    if (typeof uPlot === 'undefined') return;
    document.querySelectorAll('[data-chart]').forEach(function (el) {
      var src = document.getElementById(el.getAttribute('data-chart'));
      if (!src) return;
      var spec = JSON.parse(src.textContent);
      var series = [{}].concat(spec.series.map(function (s) { return { label: s.label, stroke: s.color, fill: s.fill, width: 2 }; }));
      var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
      var width = Math.max(300, el.clientWidth - 16);
      el.textContent = '';
      new uPlot({ width: width, height: 220, series: series, axes: [{}, {}], scales: { x: { time: true } } }, data, el);
    });
  }
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (f instanceof HTMLFormElement && f.dataset.confirm && !window.confirm(f.dataset.confirm)) e.preventDefault();
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', drawCharts); else drawCharts();
})();
`;

interface Asset {
  body: Buffer;
  type: string;
  hash: string;
}

function asset(body: Buffer | string, type: string): Asset {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  return { body: buf, type, hash: createHash('sha256').update(buf).digest('hex').slice(0, 16) };
}

/** A package's file from node_modules (packages without an exports map: resolved through package.json). */
function packageFile(pkg: string, file: string): Buffer {
  const require = createRequire(import.meta.url);
  return readFileSync(join(dirname(require.resolve(`${pkg}/package.json`)), file));
}

export interface ConsoleAssets {
  /** The URL of an asset, with its content hash for caching. */
  url(name: AssetName): string;
  /** Size in bytes of an asset (the JavaScript budget check). */
  bytes(name: AssetName): number;
  mount(app: Hono): void;
}

export type AssetName = 'console.css' | 'console.js' | 'htmx.min.js' | 'uplot.min.js' | 'uplot.min.css';

/** Loads the assets (once per app) and serves them under /assets/. */
export function createConsoleAssets(): ConsoleAssets {
  const assets: Record<AssetName, Asset> = {
    'console.css': asset(CONSOLE_CSS, 'text/css; charset=utf-8'),
    'console.js': asset(CONSOLE_JS, 'text/javascript; charset=utf-8'),
    'htmx.min.js': asset(packageFile('htmx.org', 'dist/htmx.min.js'), 'text/javascript; charset=utf-8'),
    'uplot.min.js': asset(packageFile('uplot', 'dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'),
    'uplot.min.css': asset(packageFile('uplot', 'dist/uPlot.min.css'), 'text/css; charset=utf-8'),
  };
  return {
    url: (name) => `/assets/${name}?v=${assets[name].hash}`,
    bytes: (name) => assets[name].body.length,
    mount(app) {
      app.get('/assets/:name', (c) => {
        const a = assets[c.req.param('name') as AssetName] as Asset | undefined;
        setSecurityHeaders(c);
        if (a === undefined) return c.text('Not Found', 404);
        const etag = `"${a.hash}"`;
        c.header('etag', etag);
        c.header('cache-control', 'public, max-age=31536000, immutable');
        if (c.req.header('if-none-match') === etag) return c.body(null, 304);
        return c.body(new Uint8Array(a.body), 200, { 'content-type': a.type });
      });
    },
  };
}
