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
  // liveness and streaming analytics (engine/liveness.ts, engine/analytics.ts)
  'device.online': 'エージェントの復旧',
  'tenant.mass_offline': '多数のエージェントが同時にオフライン',
  'tenant.recovered': '同時オフラインからの復旧',
  'analytics.threshold': 'しきい値の超過',
};

/** The JSON body of a webhook: the idempotency key, the events, and the alerts they name. */
export interface WebhookBody {
  id: string;
  digest: boolean;
  supportId: string;
  events: (NotifyFeedEvent & { url?: string; threat?: string; computer?: string; currentVerdict?: string })[];
}

function describe(store: HotStore, e: NotifyFeedEvent, consoleUrl: string): WebhookBody['events'][number] {
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
  const subject = d.threat === undefined ? fleetSubject(d) : `${d.threat} / ${d.computer ?? d.tmid ?? ''}`;
  return `- ${when} ${what}${verdict} ${subject}${d.url === undefined ? '' : `\n  ${d.url}`}`;
}

/** What a liveness or analytics event is about: the device, the number of devices, the rule. */
function fleetSubject(d: WebhookBody['events'][number]): string {
  if (d.kind === 'tenant.mass_offline' || d.kind === 'tenant.recovered') return `${d.devices ?? 0} 台`;
  if (d.kind === 'analytics.threshold') return `${d.title ?? ''} ${d.tmid ?? ''}`.trim();
  return d.tmid ?? '';
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
  const target = d.threat === undefined ? fleetSubject(d) : ` ${d.threat} (${d.computer ?? ''})`;
  const attach = d.kind === 'alert.new' ? '\n速報レポートを PDF で添付しています。' : '';
  return {
    subject: `[kiseki] ${KIND_JA[d.kind]}${verdict}:${target}`,
    text: `${KIND_JA[d.kind]}をお知らせします。${attach}\n\n${line(d)}\n\nコンソール: ${d.url ?? consoleUrl}\n`,
  };
}
