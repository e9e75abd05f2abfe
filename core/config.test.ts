import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_FLAGS, CONFIG_SETTINGS, configFromEnv, configFromFlags, DEFAULTS, loadConfig } from './config.js';
import { parseFlags } from './cli-flags.js';
import { KisekiError } from './errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The configuration table of docs/OPERATIONS.md: environment variables and flags named in its rows. */
function documented(): { env: Set<string>; flags: Set<string> } {
  const text = readFileSync(join(ROOT, 'docs/OPERATIONS.md'), 'utf8');
  const section = text.slice(text.indexOf('## Configuration'), text.indexOf('\n## ', text.indexOf('## Configuration') + 1));
  const env = new Set<string>();
  const flags = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| flag')) continue;
    const [flagCell = '', envCell = ''] = line.split(' | ');
    for (const m of envCell.matchAll(/KISEKI_[A-Z0-9_]+/g)) env.add(m[0]);
    for (const m of flagCell.matchAll(/--([a-z0-9-]+)/g)) flags.add(m[1]!);
  }
  return { env, flags };
}

describe('configuration', () => {
  it('docs/OPERATIONS.md lists exactly the environment variables and start flags of CONFIG_SETTINGS', () => {
    const docs = documented();
    expect([...docs.env].sort()).toEqual(CONFIG_SETTINGS.map((s) => s.env).sort());
    // --host is the one flag outside the table: it sets both listen addresses.
    expect([...docs.flags].sort()).toEqual([...CONFIG_SETTINGS.flatMap((s) => (s.flag === undefined ? [] : [s.flag])), 'host'].sort());
  });

  it('every setting path exists in the defaults or the schema', () => {
    for (const s of CONFIG_SETTINGS) {
      const [head, tail] = s.path.split('.');
      const value = { ...DEFAULTS, engine: { ...DEFAULTS.engine, intelDir: '' }, sigma: { ...DEFAULTS.sigma, dir: '' }, ingest: { ...DEFAULTS.ingest, tlsCertFile: '', tlsKeyFile: '' }, http: { ...DEFAULTS.http, tlsCertFile: '', tlsKeyFile: '', clientCaFile: '' }, intel: { ...DEFAULTS.intel, taxiiServersFile: '' }, siem: { ...DEFAULTS.siem, destinationsFile: '' }, cluster: { ...DEFAULTS.cluster, nodeHttpPort: 0 } } as Record<string, unknown>;
      const node = tail === undefined ? value : (value[head!] as Record<string, unknown>);
      expect(node, s.path).toHaveProperty(tail ?? head!);
    }
  });

  it('reads the environment, then flags, which win', () => {
    const env = { KISEKI_DATA: '/env', KISEKI_SHARDS: '3', KISEKI_EXPORT_WORKERS: '2', KISEKI_HOT_RETENTION_DAYS: '10', KISEKI_HEALTH_MAX_MAP_USE_PERCENT: '75.5', KISEKI_HTTP_REQUIRE_CLIENT_CERT: '', KISEKI_INGEST_PORT: '' };
    const flags = parseFlags(['--data', '/flag', '--export-workers', '0', '--cold-retention-days=400'], CONFIG_FLAGS).values;
    const c = loadConfig(configFromEnv(env), configFromFlags(flags));
    expect(c.dataDir).toBe('/flag');
    expect(c.engine.shards).toBe(3);
    expect(c.export).toMatchObject({ workerThreads: 0, hotRetentionDays: 10, coldRetentionDays: 400, exportRetentionDays: 30 });
    expect(c.health.maxMapUsePercent).toBe(75.5);
    expect(c.ingest.port).toBe(DEFAULTS.ingest.port);
    expect(Object.isFrozen(c.export)).toBe(true);
  });

  it.each([
    [{ KISEKI_SHARDS: 'two' }, 'KISEKI_SHARDS takes an integer'],
    [{ KISEKI_EXPORT_WORKERS: '1.5' }, 'KISEKI_EXPORT_WORKERS takes an integer'],
    [{ KISEKI_HTTP_REQUIRE_CLIENT_CERT: 'yes' }, 'KISEKI_HTTP_REQUIRE_CLIENT_CERT takes true or false'],
  ])('refuses %j', (env, reason) => {
    expect(() => configFromEnv(env)).toThrow(KisekiError);
    expect(() => configFromEnv(env)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', details: expect.objectContaining({ reason }) }));
  });

  it('refuses a flag of the wrong type as a usage error', () => {
    expect(() => configFromFlags({ shards: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_USAGE', details: expect.objectContaining({ reason: '--shards takes an integer' }) }));
  });

  it('validates the folded export slice with the same strict schema', () => {
    expect(() => loadConfig({ export: { hotRetentionDays: 0 } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => loadConfig({ export: { nope: 1 } as never })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => loadConfig({ export: { parquetCompression: 'gzip' as never } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });

  // cluster (issue 19)
  it('keeps the embedded mode as default and asks the node roles for NATS URLs', () => {
    expect(loadConfig().cluster).toMatchObject({ role: 'all', nats: '' });
    const node = loadConfig(configFromFlags({ role: 'shard', nats: 'nats://a:4222,nats://b:4222', 'nats-replicas': 3, 'node-id': 's1' }));
    expect(node.cluster).toMatchObject({ role: 'shard', nats: 'nats://a:4222,nats://b:4222', replicas: 3, nodeId: 's1', streamMaxAgeDays: 8 });
    expect(loadConfig(configFromFlags({ 'stream-max-age-days': 3 })).cluster.streamMaxAgeDays).toBe(3);
    expect(() => loadConfig({ cluster: { streamMaxAgeDays: 0 } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => loadConfig({ cluster: { role: 'ingest' } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => loadConfig({ cluster: { nats: 'nats://a:4222' } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(loadConfig({ cluster: { role: 'api', nats: 'nats://a:4222' } }).cluster.role).toBe('api');
    expect(() => loadConfig({ cluster: { role: 'api' } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
    expect(() => loadConfig({ cluster: { role: 'web' as never, nats: 'nats://a:4222' } })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });
});
