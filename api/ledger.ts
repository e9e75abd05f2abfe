/**
 * The inventory ledger (issue 16, docs/FLEET.md): the latest `inv` frame of
 * every device of a tenant, flattened into one table per kind — installed
 * applications, Windows updates, drives, USB devices — and written as CSV
 * that Excel and Python's csv module open as they are: RFC 4180 (CRLF line
 * ends, fields quoted when they hold a comma, a quote or a line break,
 * quotes doubled), UTF-8 with a byte-order mark, a header row. A text cell
 * starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
 * leading `'`, so a spreadsheet shows it instead of running it as a formula
 * (an agent controls these strings).
 */
import type { HotStore, DeviceRecord } from '../storage/index.js';
import { usbAllowedBy } from '../core/fleet-policy.js';

export const LEDGER_KINDS = ['apps', 'updates', 'drives', 'usb'] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

type Cell = string | number | boolean | null | undefined;

/** One ledger table: its column names and rows. */
export interface LedgerTable {
  columns: string[];
  rows: Cell[][];
}

const COLUMNS: Record<LedgerKind, string[]> = {
  apps: ['computer', 'tmid', 'name', 'version', 'publisher', 'installedAt', 'inventoryAt'],
  updates: ['computer', 'tmid', 'update', 'state', 'title', 'installedAt', 'lastSearchAt', 'pendingReboot', 'inventoryAt'],
  drives: ['computer', 'tmid', 'letter', 'type', 'fs', 'sizeBytes', 'freeBytes', 'bitlocker', 'inventoryAt'],
  usb: ['computer', 'tmid', 'vendorId', 'productId', 'serial', 'vendor', 'model', 'type', 'allowed', 'inventoryAt'],
};

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)) : []);
const iso = (v: unknown): string | undefined => (typeof v === 'number' && Number.isFinite(v) ? new Date(v).toISOString() : str(v));

/** The rows one device's inventory gives a ledger kind. */
function deviceRows(kind: LedgerKind, d: DeviceRecord, inv: Record<string, unknown>, usbAllowed: (u: Record<string, unknown>) => string): Cell[][] {
  const at = iso(inv.receivedAt);
  switch (kind) {
    case 'apps':
      return list(inv.apps).map((a) => [d.computer, d.tmid, str(a.name), str(a.version), str(a.publisher), iso(a.installedAt), at]);
    case 'updates': {
      const wu = typeof inv.windowsUpdate === 'object' && inv.windowsUpdate !== null ? (inv.windowsUpdate as Record<string, unknown>) : {};
      const search = iso(wu.lastSearchAt);
      const reboot = bool(wu.pendingReboot);
      const pending = Array.isArray(wu.pending) ? wu.pending : [];
      const rows: Cell[][] = [];
      // Installed updates as maps ({kb, title, installedAt}); pending ones as KB numbers or maps.
      for (const u of list(wu.installed)) rows.push([d.computer, d.tmid, str(u.kb) ?? str(u.id), 'installed', str(u.title), iso(u.installedAt), search, reboot, at]);
      for (const u of pending) {
        const m: Record<string, unknown> = typeof u === 'object' && u !== null ? (u as Record<string, unknown>) : { kb: u };
        rows.push([d.computer, d.tmid, str(m.kb) ?? str(m.id), 'pending', str(m.title), undefined, search, reboot, at]);
      }
      return rows;
    }
    case 'drives':
      return list(inv.drives).map((v) => [d.computer, d.tmid, str(v.letter), str(v.type), str(v.fs), num(v.sizeBytes), num(v.freeBytes), bool(v.bitlocker), at]);
    case 'usb':
      return list(inv.usb).map((u) => [d.computer, d.tmid, str(u.vendorId), str(u.productId), str(u.serial), str(u.vendor), str(u.model), str(u.type), usbAllowed(u), at]);
  }
}

/** A tenant's ledger of one kind, devices in TMID order (devices without an inventory give no rows). */
export function ledgerTable(store: HotStore, supportId: string, kind: LedgerKind): LedgerTable {
  const policy = store.fleet.policy(supportId);
  // `allowed` says what device control decides for the device: yes / no, or empty while control is off.
  const usbAllowed = (u: Record<string, unknown>): string => (!policy.usb.control ? '' : usbAllowedBy(policy.usb.allow, u) === undefined ? 'no' : 'yes');
  const rows: Cell[][] = [];
  for (const d of store.devices.scanTenant(supportId)) {
    const inv = store.devices.inventory(d.tmid);
    if (inv !== undefined) rows.push(...deviceRows(kind, d, inv, usbAllowed));
  }
  return { columns: COLUMNS[kind], rows };
}

/** Row counts of every ledger kind, and how many devices sent an inventory. */
export function ledgerCounts(store: HotStore, supportId: string): { devices: number; withInventory: number } & Record<LedgerKind, number> {
  const out = { devices: 0, withInventory: 0, apps: 0, updates: 0, drives: 0, usb: 0 };
  for (const d of store.devices.scanTenant(supportId)) {
    out.devices++;
    const inv = store.devices.inventory(d.tmid);
    if (inv === undefined) continue;
    out.withInventory++;
    for (const kind of LEDGER_KINDS) out[kind] += deviceRows(kind, d, inv, () => '').length;
  }
  return out;
}

function csvCell(v: Cell): string {
  if (v === undefined || v === null) return '';
  let text = typeof v === 'string' ? v : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A table as RFC 4180 CSV, UTF-8 with a byte-order mark (Excel reads it as UTF-8), header row first. */
export function toCsv(table: LedgerTable): string {
  const lines = [table.columns.map(csvCell).join(','), ...table.rows.map((r) => r.map(csvCell).join(','))];
  return `\ufeff${lines.join('\r\n')}\r\n`;
}
