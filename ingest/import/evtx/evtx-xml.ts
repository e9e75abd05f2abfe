/**
 * A record as XML text, the way Windows renders event XML: attributes whose
 * optional substitution is null are left out, empty elements self-close,
 * values are formatted by evtx-values.ts and escaped for XML (control
 * characters as character references). No indentation.
 */
import { formatValue } from './evtx-values.js';
import { VT, type EvtxNode, type EvtxRecord } from './evtx-types.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Escapes text for an XML text node or a double-quoted attribute. */
export function escapeXml(s: string): string {
  // XML 1.0 text cannot hold C0 controls other than tab, LF and CR: they become character references.
  return s.replace(/[&<>"\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => ESCAPES[c] ?? `&#x${c.charCodeAt(0).toString(16)};`);
}

function isOmitted(parts: EvtxNode[]): boolean {
  return parts.length > 0 && parts.every((p) => p.kind === 'value' && p.optional === true && p.value === null);
}

function render(node: EvtxNode, out: string[]): void {
  switch (node.kind) {
    case 'element': {
      out.push('<', node.name);
      for (const a of node.attributes) {
        if (isOmitted(a.value)) continue;
        out.push(' ', a.name, '="');
        for (const p of a.value) render(p, out);
        out.push('"');
      }
      if (node.children.length === 0) {
        out.push('/>');
        return;
      }
      out.push('>');
      for (const c of node.children) render(c, out);
      out.push('</', node.name, '>');
      return;
    }
    case 'value':
      if (node.type === VT.BINXML && Array.isArray(node.value)) for (const c of node.value as EvtxNode[]) render(c, out);
      else out.push(escapeXml(formatValue(node)));
      return;
    case 'cdata':
      out.push('<![CDATA[', node.text.replaceAll(']]>', ']]]]><![CDATA[>'), ']]>');
      return;
    case 'charref':
      out.push(`&#x${node.code.toString(16)};`);
      return;
    case 'entityref':
      out.push(`&${node.name};`);
      return;
    case 'pi':
      out.push('<?', node.target, node.data === '' ? '' : ` ${node.data}`, '?>');
      return;
  }
}

/** Renders nodes (a record's document, or part of one) as XML text. */
export function renderXml(nodes: EvtxNode[]): string {
  const out: string[] = [];
  for (const n of nodes) render(n, out);
  return out.join('');
}

/** A record's document as XML text. */
export function recordXml(record: EvtxRecord): string {
  return renderXml(record.nodes);
}
