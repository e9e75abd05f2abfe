/**
 * The report templates: complete HTML documents (inline CSS, no scripts, no
 * external fetches) that the console serves as they are and Chromium prints
 * to PDF. Japanese first, the customers' language; fonts from the system
 * (Noto Sans CJK JP on Debian with fonts-noto-cjk). Every value is escaped.
 */
import type { QuickReport } from '../core/contracts.js';
import type { AlertView, CustomerAnswer } from '../storage/index.js';
import type { ReportFigures } from './figures.js';

const VERDICT_JA = { black: '黒', gray: '灰', white: '白' } as const;
const SEVERITY_JA = { high: '高', medium: '中', low: '低' } as const;

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A JST timestamp `YYYY-MM-DD HH:mm`. */
export function jstTime(ms: number): string {
  return new Date(ms + 9 * 3600_000).toISOString().slice(0, 16).replace('T', ' ');
}

const STYLE = `
  body { font-family: "Noto Sans CJK JP", "Noto Sans JP", sans-serif; font-size: 10.5pt; color: #222; margin: 0; }
  h1 { font-size: 18pt; border-bottom: 2px solid #333; padding-bottom: 4px; }
  h2 { font-size: 13pt; margin-top: 18px; border-left: 5px solid #555; padding-left: 6px; }
  table { border-collapse: collapse; width: 100%; margin: 6px 0; }
  th, td { border: 1px solid #999; padding: 3px 6px; text-align: left; }
  th { background: #eee; }
  td.n { text-align: right; }
  .black { color: #000; font-weight: bold; } .gray { color: #666; } .white { color: #2a7; }
  .meta { color: #555; }
`;

const doc = (title: string, body: string): string =>
  `<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;

const table = (head: string[], rows: (string | number)[][]): string =>
  rows.length === 0
    ? '<p>該当なし</p>'
    : `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
        .map((r) => `<tr>${r.map((c) => `<td${typeof c === 'number' ? ' class="n"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>`;

/** The monthly or weekly report of one tenant. */
export function periodicReportHtml(kind: 'monthly' | 'weekly', label: string, f: ReportFigures): string {
  const title = `${kind === 'monthly' ? '月次レポート' : '週次レポート'} ${label}`;
  return doc(
    title,
    `<h1>${escapeHtml(title)}</h1>
<p class="meta">${escapeHtml(f.tenantName)} (${escapeHtml(f.supportId)}) ／ 対象期間: ${jstTime(f.periodStart)} 〜 ${jstTime(f.periodEnd)} (JST)</p>
<h2>検知件数</h2>
${table(['区分', '件数'], [['検知件数', f.detections], ['判定: 黒', f.byVerdict.black], ['判定: 灰', f.byVerdict.gray], ['判定: 白', f.byVerdict.white]])}
<h2>重要度別</h2>
${table(['重要度', '件数'], [['高', f.bySeverity.high], ['中', f.bySeverity.medium], ['低', f.bySeverity.low]])}
<h2>脅威の上位</h2>
${table(['脅威名', '件数'], f.topThreats.map((t) => [t.name, t.count]))}
<h2>ルールの上位</h2>
${table(['ルール', '件数'], f.topRules.map((r) => [r.ruleId, r.count]))}
<h2>端末とエージェント</h2>
${table(['区分', '値'], [['端末数', f.devices], ['隔離', f.isolations], ['例外の追加', f.exceptionsAdded], ['ログ量 (イベント数)', f.logEvents]])}
${table(['エージェントのバージョン', '端末数'], f.agentVersions.map((v) => [v.version, v.count]))}
<h2>オフライン端末</h2>
${table(['端末', 'TMID', '最終接続 (JST)'], f.offlineDevices.map((d) => [d.computer, d.tmid, jstTime(d.lastSeen)]))}
<h2>検知一覧</h2>
${table(['日時 (JST)', '端末', '脅威名', '判定', '重要度'], f.alerts.map((a) => [jstTime(a.createdAt), a.computer, a.threat, VERDICT_JA[a.verdict], SEVERITY_JA[a.severity]]))}`,
  );
}

function sectionsHtml(report: QuickReport): string {
  return report.sections
    .map((s) => `<h2>${escapeHtml(s.title)}</h2><p>${escapeHtml(s.summary)}</p>${s.items.length === 0 ? '' : table(['時刻 (JST)', '種別', '内容'], s.items.slice(0, 30).map((i) => [jstTime(i.ref.ts), i.ref.k, i.note ?? JSON.stringify(i.event).slice(0, 200)]))}`)
    .join('\n');
}

/** The quick report of an alert (its latest revision): the mail attachment. */
export function quickReportHtml(view: AlertView): string {
  const a = view.alert;
  const r = view.revisions.at(-1);
  return doc(
    `速報レポート ${a.id}`,
    `<h1>速報レポート</h1>
<p class="meta">${escapeHtml(a.supportId)} ／ ${escapeHtml(a.computer)} ／ 検知 ${jstTime(a.detectedAt)} (JST) ／ 版 ${a.revision}</p>
${table(['項目', '値'], [['脅威名', a.threat], ['ファイル', a.path], ['SHA-256', a.sha256], ['判定', VERDICT_JA[a.verdict]], ['スコア', a.score], ['対応', a.action]])}
${r === undefined ? '' : sectionsHtml(r)}`,
  );
}

/**
 * The detailed (incident) report of one incident: the alert and the other
 * alerts merged into it, each latest quick report, the analysts' verdict
 * history and comments, and the customer's answers.
 */
export function incidentReportHtml(views: AlertView[], answers: CustomerAnswer[]): string {
  const main = views[0]!.alert;
  const history = views.flatMap((v) => v.verdicts).sort((x, y) => x.at - y.at);
  const comments = views.flatMap((v) => v.comments).sort((x, y) => x.at - y.at);
  return doc(
    `インシデントレポート ${main.id}`,
    `<h1>インシデントレポート</h1>
<p class="meta">${escapeHtml(main.supportId)} ／ ${escapeHtml(main.computer)} ／ 作成の基になった検知: ${views.length} 件</p>
<h2>概要</h2>
${table(['検知', '日時 (JST)', '脅威名', 'ファイル', '判定'], views.map((v) => [v.alert.id, jstTime(v.alert.detectedAt), v.alert.threat, v.alert.path, VERDICT_JA[v.alert.verdict]]))}
<h2>判定の履歴</h2>
${table(['日時 (JST)', '検知', '変更前', '変更後', '変更者'], history.map((h) => [jstTime(h.at), h.alertId, h.from === null ? '-' : VERDICT_JA[h.from], VERDICT_JA[h.to], h.by]))}
<h2>分析者のコメント</h2>
${table(['日時 (JST)', '分析者', 'コメント'], comments.map((c) => [jstTime(c.at), c.author, c.text]))}
<h2>お客様からの回答</h2>
${table(['日時 (JST)', '回答者', '回答'], answers.map((c) => [jstTime(c.at), c.by, c.text]))}
${views.map((v) => (v.revisions.at(-1) === undefined ? '' : `<h2>速報 ${escapeHtml(v.alert.id)}</h2>${sectionsHtml(v.revisions.at(-1)!)}`)).join('\n')}`,
  );
}
