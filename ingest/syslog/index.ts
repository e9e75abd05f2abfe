/**
 * Public surface of ingest/syslog: the receiver (TCP, TLS, UDP), tenant
 * routing, and the pure parsers (syslog header, Squid, Suricata EVE, CEF,
 * FortiGate) for tests, benchmarks and imports.
 */
export { startSyslogReceiver } from './receiver.js';
export type { SyslogReceiver, SyslogReceiverOptions, SyslogReceiverSettings, SyslogStats } from './receiver.js';
export { createSyslogRouter, loadSyslogRoutes } from './routing.js';
export type { SyslogRoute, SyslogRouter } from './routing.js';
export { parseLine, parseMessage } from './parse-line.js';
export type { LineResult } from './parse-line.js';
export { NETLOG_FAILURE_REASONS } from './parse-result.js';
export type { NetlogFailureReason, ParseResult, ParsedFields } from './parse-result.js';
export { parseSyslogHeader } from './syslog-header.js';
export { createSyslogFramer } from './framing.js';
