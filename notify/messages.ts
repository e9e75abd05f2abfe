/**
 * What a notification says: the mail subject, plain text and HTML part
 * (Japanese first, the customers' language, with the console link) and the
 * webhook's JSON body. Built at send time from what storage holds then, so a
 * digest lists each alert with its current effective verdict. The HTML part
 * says the same as the text (mail clients show one or the other), inline
 * styles only: mail clients drop style sheets and never load remote ones.
 */
import type { HotStore, NotifyFeedEvent, OutboxEntry } from '../storage/index.js';

const VERDICT_JA: Record<string, string> = { black: '黒 (悪性)', gray: '灰 (要確認)', white: '白 (問題なし)' };
const KIND_JA: Record<NotifyFeedEvent['kind'], string> = {
  'alert.new': '新しい検知',
  'alert.verdict': '判定の変更',
  'device.isolated': '端末の隔離',
  'device.offline': 'エージェントのオフライン',
  'report.incident': 'インシデントレポート',
  'intel.hit': '脅威インテリジェンスとの一致 (ネットワークログ)',
  'detection.new': 'Sigma ルールの検知',
  // liveness and streaming analytics (engine/liveness.ts, engine/analytics.ts)
  'device.online': 'エージェントの復旧',
  'tenant.mass_offline': '多数のエージェントが同時にオフライン',
  'tenant.recovered': '同時オフラインからの復旧',
  'analytics.threshold': 'しきい値の超過',
  'intel.endpoint': '脅威インテリジェンスとの一致 (端末のログ)',
  // Never notified (no recipient can ask for it): named for completeness.
  'alert.updated': 'アラートの更新',
};

/** The JSON body of a webhook: the idempotency key, the events, and the alerts they name. */
export interface WebhookBody {
  id: string;
  digest: boolean;
  supportId: string;
  events: (NotifyFeedEvent & { url?: string; threat?: string; computer?: string; currentVerdict?: string })[];
}

function describe(store: HotStore, e: NotifyFeedEvent, consoleUrl: string): WebhookBody['events'][number] {
  if (e.kind === 'intel.hit' && e.alertId !== undefined) {
    // A network-intel alert: the indicators it hit and the device behind the connection.
    const ia = store.intelAlerts.get(e.alertId);
    if (ia === undefined) return { ...e };
    const threat = `${e.severity ?? ia.severity}: ${[...new Set(ia.hits.map((h) => h.value))].join(', ')} (${ia.network.format}, ${ia.network.action})`;
    return { ...e, threat, ...(ia.device === undefined ? {} : { computer: ia.device.computer }) };
  }
  if (e.kind === 'detection.new' && e.detectionId !== undefined) {
    const d = store.detections.get(e.detectionId);
    return d === undefined ? { ...e } : { ...e, threat: `${d.severity}: ${d.title}`, computer: d.computer };
  }
  if (e.alertId === undefined) return { ...e };
  const a = store.alerts.effective(e.alertId);
  return {
    ...e,
    url: `${consoleUrl}/alerts/${e.alertId}`,
    ...(a === undefined ? {} : { threat: a.threat, computer: a.computer, currentVerdict: a.verdict }),
  };
}

/** The webhook body of an outbox entry. */
export function webhookBody(store: HotStore, entry: OutboxEntry, consoleUrl: string): WebhookBody {
  return { id: entry.id, digest: entry.digest, supportId: entry.supportId, events: entry.events.map((e) => describe(store, e, consoleUrl)) };
}

/** What a liveness or analytics event is about: the device, the number of devices, the rule. */
function fleetSubject(d: WebhookBody['events'][number]): string {
  if (d.kind === 'tenant.mass_offline' || d.kind === 'tenant.recovered') return `${d.devices ?? 0} 台`;
  if (d.kind === 'analytics.threshold' || d.kind === 'intel.endpoint') return `${d.title ?? ''} ${d.tmid ?? ''}`.trim();
  return d.tmid ?? '';
}

function line(d: WebhookBody['events'][number]): string {
  const when = new Date(d.at).toISOString();
  const what = KIND_JA[d.kind];
  const verdict = d.verdict === undefined ? '' : ` 判定: ${VERDICT_JA[d.verdict] ?? d.verdict}${d.from ? ` (変更前: ${VERDICT_JA[d.from] ?? d.from})` : ''}`;
  const subject = d.threat === undefined ? fleetSubject(d) : `${d.threat} / ${d.computer ?? d.tmid ?? ''}`;
  return `- ${when} ${what}${verdict} ${subject}${d.url === undefined ? '' : `\n  ${d.url}`}`;
}

/** Escapes text for HTML element content and attribute values. */
function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** One event as an HTML list item: the same words as `line`, the link clickable. */
function lineHtml(d: WebhookBody['events'][number]): string {
  const when = new Date(d.at).toISOString();
  const verdict = d.verdict === undefined ? '' : ` 判定: <strong>${esc(VERDICT_JA[d.verdict] ?? d.verdict)}</strong>${d.from ? ` (変更前: ${esc(VERDICT_JA[d.from] ?? d.from)})` : ''}`;
  const subject = d.threat === undefined ? esc(fleetSubject(d)) : `${esc(d.threat)} / ${esc(d.computer ?? d.tmid ?? '')}`;
  return `<li>${esc(when)} ${esc(KIND_JA[d.kind])}${verdict} ${subject}${d.url === undefined ? '' : `<br><a href="${esc(d.url)}">${esc(d.url)}</a>`}</li>`;
}

const htmlMail = (title: string, paragraphs: string[], items: string[], link: string): string =>
  `<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>${esc(title)}</title></head>` +
  `<body style="font-family:'Noto Sans CJK JP','Noto Sans JP',sans-serif;color:#1a1a1a;line-height:1.5">` +
  paragraphs.map((p) => `<p>${esc(p)}</p>`).join('') +
  `<ul>${items.join('')}</ul>` +
  `<p>コンソール: <a href="${esc(link)}">${esc(link)}</a></p></body></html>`;

/** Subject, plain text and HTML part of the mail of an outbox entry. */
export function renderMail(store: HotStore, entry: OutboxEntry, consoleUrl: string): { subject: string; text: string; html: string } {
  const body = webhookBody(store, entry, consoleUrl);
  if (entry.digest) {
    const subject = `[kiseki] ${entry.supportId}: ${body.events.length} 件の通知 (まとめ)`;
    const intro = '通知が多いため、この1時間の通知をまとめてお送りします。';
    return {
      subject,
      text: `${intro}\n\n${body.events.map(line).join('\n')}\n`,
      html: htmlMail(subject, [intro], body.events.map(lineHtml), consoleUrl),
    };
  }
  const d = body.events[0]!;
  const verdict = d.verdict === undefined ? '' : ` ${VERDICT_JA[d.verdict] ?? d.verdict}`;
  const target = d.threat === undefined ? fleetSubject(d) : ` ${d.threat} (${d.computer ?? ''})`;
  const attach = d.kind === 'alert.new' ? '速報レポートを PDF で添付しています。' : d.kind === 'report.incident' ? 'インシデントレポートを PDF で添付しています。' : '';
  const subject = `[kiseki] ${KIND_JA[d.kind]}${verdict}:${target}`;
  const intro = `${KIND_JA[d.kind]}をお知らせします。`;
  const link = d.kind === 'report.incident' && d.reportId !== undefined ? `${consoleUrl}/reports/${d.reportId}` : (d.url ?? consoleUrl);
  return {
    subject,
    text: `${intro}${attach === '' ? '' : `\n${attach}`}\n\n${line(d)}\n\nコンソール: ${link}\n`,
    html: htmlMail(subject, attach === '' ? [intro] : [intro, attach], [lineHtml(d)], link),
  };
}
