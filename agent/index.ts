/**
 * Public surface of agent/: the one agent protocol client (used by the
 * simulator, `kiseki import` and `kiseki detect`), the agent-fleet simulator
 * behind `kiseki simulate`, and the seeded trail generator.
 */
export { createConnectGate, createProtocolClient, probeAgentEndpoint, DEFAULT_POLICY, RETRYABLE_ERROR_CODES } from './protocol-client.js';
export type {
  AgentCredentials,
  CommandOutcome,
  ConnectGate,
  HelloFacts,
  OutgoingBatch,
  ProtocolClient,
  ProtocolClientHandlers,
  ProtocolClientOptions,
  ProtocolClientStats,
  QueuedBatch,
  WelcomeInfo,
} from './protocol-client.js';
export { runSimulation, allowed } from './simulator.js';
export type { AckLatencySummary, SimulationOptions, SimulationProgress, SimulationSummary, SimulatorAgentState } from './simulator.js';
export { createPrng, createTrailGenerator, failedLogonBurst, hashString, TRAIL_USB_VENDOR_IDS, usbInsertEvent } from './trail-generator.js';
export type { GeneratedProcess, SignatureStatus, TrailGenerator, TrailGeneratorOptions, UsbInsertion } from './trail-generator.js';
