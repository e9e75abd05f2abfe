/**
 * HTML → PDF through headless Chromium (playwright-core `page.pdf()`; the
 * Debian `chromium` package, Japanese glyphs from `fonts-noto-cjk`). One
 * browser is launched on first use and shared; each render gets its own
 * page. Reports are rare (a few per tenant per month plus one per black
 * alert), so a lazily started browser is cheaper than a pool.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { KisekiError } from '../core/errors.js';

/** Where Debian and Ubuntu install Chromium. */
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The first Chromium found: `explicit` when given, else the usual paths; undefined when none. */
export function findChromium(explicit?: string): string | undefined {
  if (explicit !== undefined) return existsSync(explicit) ? explicit : undefined;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p));
}

export interface PdfRenderer {
  /** Renders a complete HTML document to an A4 PDF. */
  render(html: string): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * Creates a renderer; Chromium starts on the first render.
 * @throws KisekiError ERR_REPORT_RENDER (from render) when Chromium is missing or fails.
 */
export function createPdfRenderer(options: { executablePath?: string } = {}): PdfRenderer {
  let browser: Promise<Browser> | undefined;
  const launch = (): Promise<Browser> => {
    const executablePath = findChromium(options.executablePath);
    if (executablePath === undefined) return Promise.reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'Chromium was not found: install Debian chromium or set its path' }));
    // --no-sandbox: the service usually runs in a container without user namespaces; the pages are our own HTML.
    return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  };
  return {
    async render(html) {
      browser ??= launch();
      let b: Browser;
      try {
        b = await browser;
      } catch (cause) {
        browser = undefined;
        throw cause instanceof KisekiError ? cause : new KisekiError('ERR_REPORT_RENDER', { reason: 'Chromium did not start' }, { cause });
      }
      const page = await b.newPage();
      try {
        await page.setContent(html, { waitUntil: 'load' });
        return await page.pdf({ format: 'A4', printBackground: true, margin: { top: '15mm', bottom: '15mm', left: '12mm', right: '12mm' } });
      } catch (cause) {
        throw new KisekiError('ERR_REPORT_RENDER', { reason: 'Chromium did not print the PDF' }, { cause });
      } finally {
        await page.close().catch(() => undefined);
      }
    },
    async close() {
      const b = browser;
      browser = undefined;
      if (b !== undefined) await (await b.catch(() => undefined))?.close();
    },
  };
}
