/**
 * The export slice of the configuration. Its defaults, schema, environment
 * variables and flags live in core/config.ts with the rest; this module only
 * names the slice for export/ and builds one from a partial override (the
 * tests and embedders that do not load the whole configuration).
 */
import { DEFAULTS, loadConfig, type Config } from '../core/config.js';

export type ExportConfig = Config['export'];

export const EXPORT_DEFAULTS: Readonly<ExportConfig> = DEFAULTS.export;

/**
 * Defaults overridden by `override`, validated with the whole configuration schema and frozen.
 * @throws KisekiError ERR_CONFIG_INVALID with the schema issues in details.
 */
export function exportConfig(override: Partial<ExportConfig> = {}): Readonly<ExportConfig> {
  return loadConfig({ export: override }).export;
}
