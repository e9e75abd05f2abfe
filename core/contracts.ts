/**
 * Data-flow contracts shared by every folder: trail events (SPEC §2), agent
 * protocol frames (SPEC §3, docs/PROTOCOL.md) and the ports between ingest,
 * engine and storage. Types only: no runtime code lives here.
 */

/** Event kinds of SPEC §2. Unknown kinds are accepted and stored unchanged. */
export type TrailEventKind =
  | 'proc.start'
  | 'proc.end'
  | 'file.create'
  | 'file.write'
  | 'file.read'
  | 'file.delete'
  | 'file.rename'
  | 'reg.set'
  | 'reg.create'
  | 'reg.delete'
  | 'net.conn'
  | 'net.dns'
  | 'usb.connect'
  | 'usb.disconnect'
  | 'logon'
  | 'logoff'
  | 'av.detect';

/** Fields every trail event carries; kind-specific fields ride along (SPEC §2). */
export interface TrailEvent {
  /** Endpoint time, ms since epoch, UTC. */
  ts: number;
  /** Event kind; a TrailEventKind or an unknown kind kept for forward compatibility. */
  k: TrailEventKind | (string & {});
  /** Per-device sequence number, +1 per recorded event across batches and reconnects. */
  seq: number;
  /** Acting process GUID (Sysmon ProcessGuid). */
  pg?: string;
  pid?: number;
  /** User SID. */
  user?: string;
  [field: string]: unknown;
}

/** Agent policy sent in `welcome`. */
export interface AgentPolicy {
  batchIntervalMs: number;
  maxBatchEvents: number;
  maxUnackedBatches: number;
  hbIntervalMs: number;
}

export interface HelloFrame {
  t: 'hello';
  enrollKey?: string;
  tmid?: string;
  token?: string;
  computer: string;
  agentVersion: string;
  os: string;
  ips: string[];
  macs: string[];
}

export interface BatchFrame {
  t: 'batch';
  /** 32 lowercase hex characters, unique per batch. */
  id: string;
  /** Agent send time, ms since epoch. */
  sentAt: number;
  first: number;
  last: number;
  events: TrailEvent[];
}

export interface HeartbeatFrame {
  t: 'hb';
  ts?: number;
}

export interface InventoryFrame {
  t: 'inv';
  [field: string]: unknown;
}

export type AgentFrame = HelloFrame | BatchFrame | HeartbeatFrame | InventoryFrame;

export interface WelcomeFrame {
  t: 'welcome';
  tmid: string;
  /** Present only on enrollment. */
  token?: string;
  policy: AgentPolicy;
  serverTime: number;
  /** One past the highest seq the server holds for this device. */
  nextSeq: number;
}

export interface AckFrame {
  t: 'ack';
  id: string;
  dup?: true;
}

export interface ErrorFrame {
  t: 'error';
  code: ProtocolErrorCode;
  message: string;
  field?: string;
}

export type ServerFrame = WelcomeFrame | AckFrame | HeartbeatFrame | ErrorFrame;

/** Stable error codes of the agent protocol (docs/PROTOCOL.md). */
export type ProtocolErrorCode =
  | 'malformed_frame'
  | 'unknown_frame_type'
  | 'missing_field'
  | 'invalid_field'
  | 'frame_too_large'
  | 'hello_required'
  | 'hello_timeout'
  | 'duplicate_hello'
  | 'enroll_key_invalid'
  | 'auth_failed'
  | 'batch_id_conflict'
  | 'server_shutting_down'
  | 'internal_error';
