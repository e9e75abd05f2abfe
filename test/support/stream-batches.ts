/**
 * Cluster tests' stand-in for an ingest node: the tenant and device records it
 * publishes to `kiseki-directory` at enrollment, and batches published to the
 * stream as it publishes them (its receipt time in the message).
 */
import { encode } from '@msgpack/msgpack';
import { encodeBatchMessage } from '../../cluster/batch-message.js';
import { createIngestDirectory } from '../../cluster/directory.js';
import { batchSubject, type ClusterLink } from '../../cluster/nats.js';
import { virtualShardOf } from '../../core/vshard.js';
import { sha256Hex, type HotStore } from '../../storage/index.js';

/** Saves tenant `supportId` and device `tmid` in `source` (an ingest node's store) and publishes the device. */
export async function publishTestDevice(link: ClusterLink, source: HotStore, supportId: string, tmid: string, computer: string): Promise<void> {
  await source.tenants.save({ supportId, name: 'Example Corp', enrollKeyHash: sha256Hex(`kek_${supportId}`), createdAt: 1 });
  await createIngestDirectory({ directory: link.directory, jsm: link.jsm, store: source }).publishDevice({
    tmid, supportId, computer, agentVersion: '1.0.0', os: 'Windows 11', ips: [], macs: [], tokenHash: sha256Hex(`tok_${tmid}`), firstSeen: 1, lastSeen: 1, connected: false,
  });
}

/**
 * Publishes a batch from seq `first`, received by the ingest node at `recvAt`, with its id as message id: `n`
 * process starts, or the events given (numbered from `first`).
 */
export async function publishTestBatch(link: ClusterLink, tmid: string, id: string, first: number, n: number, recvAt: number, given?: readonly Record<string, unknown>[]): Promise<void> {
  const events = given?.map((e, i) => ({ ...e, seq: first + i })) ?? Array.from({ length: n }, (_, i) => ({ seq: first + i, t: recvAt - 1000, k: 'proc.start', pid: 100 + i, image: 'C:\\Windows\\notepad.exe' }));
  n = events.length;
  const body = encodeBatchMessage({ tmid, id, sentAt: recvAt - 500, recvAt, first, last: first + n - 1, eventCount: n, events: encode(events) }, 3);
  await link.js.publish(batchSubject(virtualShardOf(tmid), tmid), body, { msgID: id });
}
