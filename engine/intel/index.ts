/**
 * Public surface of engine/intel/: the indicator index (IP/CIDR tries, domain
 * suffixes, URL and hash maps), its sources (plain lists, STIX 2.1, TAXII 2.1,
 * MISP), the intel directory with reload, and the network-log matcher.
 */
export { createIntelIndex, parseIp, parseCidr, normaliseHost, normaliseUrl } from './intel-index.js';
export type { IntelEntry, IntelIndex, IntelIndicatorKind, IntelMatch, IntelCounts } from './intel-index.js';
export { parseStixBundle, parseStixPattern } from './stix.js';
export type { StixParseResult } from './stix.js';
export { parseMispEvent, parseMispCsv, readMispFeedDir, mispAttributeValues } from './misp.js';
export type { MispOptions } from './misp.js';
export { createThreatIntel, readIntelDir, DEFAULT_LIST_CONFIDENCE } from './intel-dir.js';
export type { ThreatIntel, ThreatIntelOptions, IntelKind, IntelLoadReport } from './intel-dir.js';
export { createNetworkIntelMatcher, intelSeverity, networkIntelAlertId, HIGH_CONFIDENCE, MEDIUM_CONFIDENCE } from './network-matcher.js';
export type { NetworkIntelMatcher, NetworkIntelMatcherOptions, NetworkIntelStats } from './network-matcher.js';
export { createTaxiiPoller, pollTaxiiCollection, mergeStixObjects } from './taxii.js';
export type { TaxiiPoller, TaxiiPollerOptions, TaxiiServerConfig, TaxiiPollResult } from './taxii.js';
export { startNetworkIntel, loadTaxiiServers } from './runtime.js';
export type { NetworkIntelRuntime } from './runtime.js';
