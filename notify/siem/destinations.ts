/**
 * Operator-wide SIEM destinations, read from the JSON file
 * `KISEKI_SIEM_DESTINATIONS_FILE` names: every tenant's events go to them,
 * besides the SIEM recipients a tenant sets in its own notification settings.
 * Only here may a destination be a `file://` path (the operator's disk).
 *
 * ```json
 * [{ "name": "soc-elastic", "to": "https://es.example:9200/logs-kiseki-default/_bulk",
 *    "format": "ecs", "http": "elastic-bulk", "headers": { "authorization": "ApiKey …" },
 *    "events": ["alert.new", "intel.hit", "detection.new"] }]
 * ```
 */
import { z } from 'zod';
import { readSettingsFile } from '../../core/config.js';
import type { NotifyRecipient } from '../../storage/index.js';

/** Feed kinds a SIEM destination may ask for. */
export const SIEM_EVENT_KINDS = ['alert.new', 'alert.verdict', 'intel.hit', 'detection.new', 'device.isolated', 'device.offline'] as const;

/** The transport and format options of a destination, as the API and the file take them. */
export const siemTargetSchema = z
  .object({
    format: z.enum(['rfc5424', 'cef', 'ecs', 'ocsf']),
    framing: z.enum(['octet-counting', 'newline']).optional(),
    insecure: z.boolean().optional(),
    http: z.enum(['ndjson', 'elastic-bulk']).optional(),
    headers: z.record(z.string(), z.string()).optional(),
  })
  .strict();

const destination = z
  .object({
    name: z.string().regex(/^[a-z0-9_-]{1,32}$/),
    to: z.string().regex(/^(tcp|tls|udp|https?|file):\/\//, 'to must be a tcp://, tls://, udp://, http(s):// or file:// address'),
    caFile: z.string().min(1).optional(),
    events: z.array(z.enum(SIEM_EVENT_KINDS)).min(1).default(['alert.new', 'alert.verdict', 'intel.hit', 'detection.new']),
    verdicts: z.array(z.enum(['black', 'gray', 'white'])).default(['black', 'gray', 'white']),
  })
  .merge(siemTargetSchema)
  .strict();

/**
 * Reads and validates the destinations file; recipients get ids `global-<name>`.
 * @throws KisekiError ERR_CONFIG_INVALID when the file is unreadable or invalid.
 */
export function loadSiemDestinations(file: string): NotifyRecipient[] {
  const destinations = readSettingsFile(file, z.array(destination).max(50), 'the SIEM destinations file');
  return destinations.map((d) => ({
    id: `global-${d.name}`,
    channel: 'siem',
    to: d.to,
    events: d.events,
    verdicts: d.verdicts,
    siem: {
      format: d.format,
      ...(d.framing === undefined ? {} : { framing: d.framing }),
      ...(d.caFile === undefined ? {} : { caFile: d.caFile }),
      ...(d.insecure === undefined ? {} : { insecure: d.insecure }),
      ...(d.http === undefined ? {} : { http: d.http }),
      ...(d.headers === undefined ? {} : { headers: d.headers }),
    },
  }));
}
