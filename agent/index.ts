/** Public surface of agent/: the agent protocol client, the agent-fleet simulator and the trail generator. */
export { runSimulation, allowed } from './simulator.js';
export type { AckLatencySummary, SimulationOptions, SimulationProgress, SimulationSummary, SimulatorAgentState } from './simulator.js';
export { createPrng, createTrailGenerator, hashString } from './trail-generator.js';
export type { GeneratedProcess, SignatureStatus, TrailGenerator, TrailGeneratorOptions } from './trail-generator.js';
