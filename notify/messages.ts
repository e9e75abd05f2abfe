/**
 * What a notification says: the mail subject and text (Japanese first, the
 * customers' language, with the console link) and the webhook's JSON body.
 * Built at send time from what storage holds then, so a digest lists each
 * alert with its current effective verdict.
 */
import type { HotStore, NotifyFeedEvent, OutboxEntry } from '../storage/index.js';

const VERDICT_JA: Record<string, string> = { black: '黒 (悪性)', gray: '灰 (要確認)', white: '白 (問題なし)' };
const KIND_JA: Record<NotifyFeedEvent['kind'], string> = {
  'alert.new': '新しい検知',
  'alert.verdict': '判定の変更',
  'device.isolated': '端末の隔離',
  'device.offline': 'エージェントのオフライン',
  'intel.hit': '脅威インテリジェンスとの一致 (ネットワークログ)',
  'detection.new': 'Sigma ルールの検知',
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

function line(d: WebhookBody['events'][number]): string {
  const when = new Date(d.at).toISOString();
  const what = KIND_JA[d.kind];
  const verdict = d.verdict === undefined ? '' : ` 判定: ${VERDICT_JA[d.verdict] ?? d.verdict}${d.from ? ` (変更前: ${VERDICT_JA[d.from] ?? d.from})` : ''}`;
  const subject = d.threat === undefined ? (d.tmid ?? '') : `${d.threat} / ${d.computer ?? d.tmid ?? ''}`;
  return `- ${when} ${what}${verdict} ${subject}${d.url === undefined ? '' : `\n  ${d.url}`}`;
}

/** Subject and plain text of the mail of an outbox entry. */
export function renderMail(store: HotStore, entry: OutboxEntry, consoleUrl: string): { subject: string; text: string } {
  const body = webhookBody(store, entry, consoleUrl);
  if (entry.digest) {
    return {
      subject: `[kiseki] ${entry.supportId}: ${body.events.length} 件の通知 (まとめ)`,
      text: `通知が多いため、この1時間の通知をまとめてお送りします。\n\n${body.events.map(line).join('\n')}\n`,
    };
  }
  const d = body.events[0]!;
  const verdict = d.verdict === undefined ? '' : ` ${VERDICT_JA[d.verdict] ?? d.verdict}`;
  const target = d.threat === undefined ? (d.tmid ?? '') : ` ${d.threat} (${d.computer ?? ''})`;
  const attach = d.kind === 'alert.new' ? '\n速報レポートを PDF で添付しています。' : '';
  return {
    subject: `[kiseki] ${KIND_JA[d.kind]}${verdict}:${target}`,
    text: `${KIND_JA[d.kind]}をお知らせします。${attach}\n\n${line(d)}\n\nコンソール: ${d.url ?? consoleUrl}\n`,
  };
}
