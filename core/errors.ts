/**
 * The error registry: every error kiseki raises on purpose has a stable code
 * here with its HTTP status and a static message. Variable data goes in
 * `details`, never in the message, so logs and API bodies stay greppable.
 */

export const ERRORS = {
  ERR_CONFIG_INVALID: { status: 500, message: 'The configuration is invalid.' },
  ERR_USAGE: { status: 400, message: 'The command line is invalid.' },
  ERR_TENANT_EXISTS: { status: 409, message: 'A tenant with this support ID already exists.' },
  ERR_TENANT_NOT_FOUND: { status: 404, message: 'No tenant has this support ID.' },
  ERR_INVALID_INPUT: { status: 400, message: 'The input is invalid.' },
  ERR_STORAGE: { status: 500, message: 'The storage layer failed.' },
  ERR_SHARD_FAILED: { status: 500, message: 'A shard worker failed.' },
  ERR_LISTEN_FAILED: { status: 500, message: 'The server could not listen on its port.' },
  ERR_ALERT_NOT_FOUND: { status: 404, message: 'No alert has this id.' },
  ERR_USER_EXISTS: { status: 409, message: 'A user with this ID already exists.' },
  ERR_USER_NOT_FOUND: { status: 404, message: 'No user has this ID.' },
  ERR_UNAUTHENTICATED: { status: 401, message: 'Authentication is required.' },
  ERR_INVALID_CREDENTIALS: { status: 401, message: 'The ID or password is wrong.' },
  ERR_ACCOUNT_LOCKED: { status: 423, message: 'The account is locked after repeated failed logins; try again later.' },
  ERR_PASSWORD_CHANGE_REQUIRED: { status: 403, message: 'The password must be changed before anything else.' },
  ERR_CLIENT_CERT_REQUIRED: { status: 401, message: 'A valid TLS client certificate is required.' },
  ERR_FORBIDDEN: { status: 403, message: 'Your role does not allow this.' },
  ERR_NOT_FOUND: { status: 404, message: 'The resource does not exist.' },
  ERR_VALIDATION: { status: 400, message: 'The request is invalid.' },
  ERR_CONFLICT: { status: 409, message: 'The request conflicts with the current state.' },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested range is outside the file.' },
  // agent/
  ERR_AGENT_UNREACHABLE: { status: 502, message: 'Nothing answers at the agent endpoint: start the server with `kiseki start` first, or check the URL.' },
  ERR_AGENT_REJECTED: { status: 502, message: 'The agent endpoint refused the device with a protocol error.' },
  ERR_AGENT_GAVE_UP: { status: 504, message: 'The agent endpoint kept failing; gave up after the allowed connections.' },
  ERR_AGENT_CLOSED: { status: 500, message: 'The agent protocol client was closed before its batches were acked.' },
  ERR_BENCH_FAILED: { status: 500, message: 'The benchmark run failed.' },
  ERR_BENCH_BASELINE_MISSING: { status: 500, message: 'A program the benchmark compares against is not installed.' },
  ERR_MALFORMED_FRAME: { status: 400, message: 'The frame is malformed.' },
  ERR_INPUT_UNREADABLE: { status: 400, message: 'An input file cannot be read.' },
  ERR_IDENTITY_FILE: { status: 500, message: 'The import identity file cannot be used.' },
  ERR_IMPORT_LOCKED: { status: 409, message: 'Another import or detect is running on this data directory.' },
  ERR_COMMAND_FAILED: { status: 500, message: 'The command could not be completed.' },
  ERR_ABORTED: { status: 503, message: 'The operation was interrupted.' },
  ERR_DAY_OPEN: { status: 409, message: 'The collection day is still open.' },
  // engine/sigma
  ERR_SIGMA_REFUSED: { status: 422, message: 'The Sigma rule uses something kiseki does not support or is invalid.' },
  ERR_EVTX_MALFORMED: { status: 400, message: 'An .evtx record holds malformed BinXML.' },
  // hardening: agent path (issue 11)
  ERR_COMMAND_ARGS_TOO_LARGE: { status: 400, message: 'The command arguments nest too deeply or are too large for a device.' },
  // hardening: process and storage (issue 11, h-process)
  ERR_STORAGE_UNAVAILABLE: { status: 503, message: 'Storage refuses writes (disk or LMDB map full, or an I/O error); nothing is acked until it accepts them again.' },
  ERR_DATA_DIR_LOCKED: { status: 409, message: 'Another kiseki server is running on this data directory.' },
  ERR_STORAGE_DAMAGED: { status: 500, message: 'The data directory is damaged; kiseki will not open it.' },
  ERR_INPUT_TOO_LARGE: { status: 413, message: 'An input file expands beyond the allowed size.' },
  // hardening: http (issue 11, api/)
  ERR_BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than the server accepts.' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The request body must be JSON (Content-Type: application/json).' },
  ERR_ORIGIN_MISMATCH: { status: 403, message: 'A cookie-authenticated request came from another origin.' },
  ERR_COMMAND_NOT_CANCELLABLE: { status: 409, message: 'Only a queued or sent, unacknowledged command can be cancelled.' },
  // notify/ and reports/
  ERR_NOTIFY_DELIVERY: { status: 502, message: 'A notification could not be delivered.' },
  ERR_REPORT_RENDER: { status: 500, message: 'A report could not be rendered.' },
  // ingest/syslog (network logs, issue 17)
  ERR_SYSLOG_ROUTES_INVALID: { status: 500, message: 'The syslog routes file is invalid.' },
  // threat intelligence and SIEM forwarding (issue 17, part B: engine/intel, notify/siem)
  ERR_INTEL_FEED: { status: 502, message: 'A threat-intelligence feed could not be read.' },
  ERR_SIEM_DELIVERY: { status: 502, message: 'A SIEM destination did not take the forwarded events.' },
  // fleet management (issue 16: rollouts, tuning, USB control)
  ERR_ROLLOUT_STATE: { status: 409, message: "The rollout's state does not allow this." },
  // cluster (issue 19): NATS JetStream nodes
  ERR_CLUSTER_UNAVAILABLE: { status: 503, message: 'The NATS JetStream cluster cannot be reached or refused the request.' },
  // notify thread (issue 15: alert → mail latency)
  ERR_NOTIFY_THREAD: { status: 500, message: 'The notifier thread could not be started.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** The one error class: a registry code, its status and message, optional details and cause. */
export class KisekiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(ERRORS[code].message, options);
    this.name = 'KisekiError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }
}

/**
 * The operator-facing reason of an error: `details.reason` when the code
 * carries one, else the static message with the details as JSON.
 */
export function describeError(err: KisekiError): string {
  const reason = err.details?.reason;
  if (typeof reason === 'string') return reason;
  return err.details === undefined ? err.message : `${err.message} ${JSON.stringify(err.details)}`;
}

/** True when `err` is a KisekiError, optionally with the given code. */
export function isKisekiError(err: unknown, code?: ErrorCode): err is KisekiError {
  return err instanceof KisekiError && (code === undefined || err.code === code);
}
