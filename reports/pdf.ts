/**
 * HTML → PDF through headless Chromium (playwright-core `page.pdf()`; the
 * Debian `chromium` package, Japanese glyphs from `fonts-noto-cjk`). One
 * browser is launched on first use and shared, with a small pool of pages
 * reused from render to render (opening a page costs about as much as
 * printing a short report). Renders queue for a free page: quick-report
 * attachments (`priority: 'high'`) go before periodic and incident reports,
 * newest first among themselves: each mail waits for its PDF a bounded
 * time, and when Chromium falls behind (measured: 5 s a page on a loaded
 * 2-core machine) serving the oldest first would print only PDFs whose mail
 * already left, while the newest one still has its whole wait ahead. A
 * render whose signal aborts while it waits is dropped unstarted.
 *
 * Chromium runs at a lower CPU priority (nice 10) than the service: a render
 * holds a core for a second or more, and on two cores a run of incident
 * reports competed with ingest acks and shard flushes (docs/REPORTS.md).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { chromium, type Browser, type Page } from 'playwright-core';
import { KisekiError } from '../core/errors.js';

/** Where Debian and Ubuntu install Chromium. */
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The first Chromium found: `explicit` when given, else the usual paths; undefined when none. */
export function findChromium(explicit?: string): string | undefined {
  if (explicit !== undefined) return existsSync(explicit) ? explicit : undefined;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p));
}

/** Nice value of Chromium's processes: PDFs wait for idle CPU rather than ingest and the shards. */
export const CHROMIUM_NICE = 10;

/**
 * Lowers the CPU priority of the children of `rootPid` whose command name
 * passes `match`, and of all their descendants, to `nice`, every thread of
 * each: Linux keeps a nice value per thread, and processes and threads
 * started later inherit it from the one that starts them (Chromium's zygote
 * forks the renderers). Returns how many threads were changed; 0 where /proc
 * is absent (not Linux) or nothing matched.
 */
export function lowerChildPriority(rootPid: number, nice: number, match: (comm: string) => boolean): number {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0;
  }
  const children = new Map<number, number[]>();
  const comm = new Map<number, string>();
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // Field 4 of /proc/PID/stat, after the parenthesised command (which may hold spaces).
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      comm.set(Number(name), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
      const list = children.get(ppid);
      if (list === undefined) children.set(ppid, [Number(name)]);
      else list.push(Number(name));
    } catch {
      // Gone since the listing.
    }
  }
  let changed = 0;
  const queue = (children.get(rootPid) ?? []).filter((pid) => match(comm.get(pid) ?? ''));
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    queue.push(...(children.get(pid) ?? []));
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        setPriority(Number(tid), nice);
        changed++;
      } catch {
        // Exited meanwhile, or not ours.
      }
    }
  }
  return changed;
}

/** Options of one render. */
export interface RenderOptions {
  /** When aborted before a page is free, the render is dropped (rejects ERR_REPORT_RENDER). */
  signal?: AbortSignal;
  /** 'high' (newest first) goes before 'normal' (the default, oldest first). */
  priority?: 'high' | 'normal';
}

export interface PdfRenderer {
  /** Renders a complete HTML document to an A4 PDF. */
  render(html: string, options?: RenderOptions): Promise<Buffer>;
  close(): Promise<void>;
}

interface Job {
  html: string;
  signal: AbortSignal | undefined;
  resolve: (pdf: Buffer) => void;
  reject: (err: unknown) => void;
}

/**
 * Creates a renderer; Chromium starts on the first render.
 * @param options.pages pages printing at once (default 2: the reference machine has two cores).
 * @throws KisekiError ERR_REPORT_RENDER (from render) when Chromium is missing or fails.
 */
export function createPdfRenderer(options: { executablePath?: string; pages?: number } = {}): PdfRenderer {
  const size = Math.max(1, options.pages ?? 2);
  let browser: Promise<Browser> | undefined;
  const queues: { high: Job[]; normal: Job[] } = { high: [], normal: [] };
  const idle: Page[] = [];
  let open = 0;
  /** Pages being opened now: no more are opened than renders wait. */
  let opening = 0;
  let closed = false;
  const waiting = (): number => queues.high.length + queues.normal.length;

  const launch = (): Promise<Browser> => {
    const executablePath = findChromium(options.executablePath);
    if (executablePath === undefined) return Promise.reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'Chromium was not found: install Debian chromium or set its path' }));
    // --no-sandbox: the service usually runs in a container without user namespaces; the pages are our own HTML.
    return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] }).then((b) => {
      lowerChromiumPriority();
      return b;
    });
  };
  // Playwright starts Chromium as a child of this process (Debian's wrapper script execs the binary). Again after
  // each new page: its renderer process and threads are new, and Chromium sets some threads' priority itself.
  const lowerChromiumPriority = (): void => {
    lowerChildPriority(process.pid, CHROMIUM_NICE, (comm) => /^(chrom|headless)/i.test(comm));
  };
  const newPage = async (): Promise<Page> => {
    browser ??= launch();
    let b: Browser;
    try {
      b = await browser;
    } catch (cause) {
      browser = undefined;
      throw cause instanceof KisekiError ? cause : new KisekiError('ERR_REPORT_RENDER', { reason: 'Chromium did not start' }, { cause });
    }
    if (!b.isConnected()) {
      // Chromium died: the pages went with it; the next page starts a new browser.
      browser = undefined;
      idle.length = 0;
      return newPage();
    }
    const page = await b.newPage();
    lowerChromiumPriority();
    return page;
  };
  /** The next job still wanted: high priority first, newest first (see above); then the rest in order. */
  const nextJob = (): Job | undefined => {
    for (;;) {
      const job = queues.high.pop() ?? queues.normal.shift();
      if (job === undefined || job.signal?.aborted !== true) return job;
      job.reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'the render was abandoned before a page was free' }));
    }
  };
  const print = async (page: Page, job: Job): Promise<void> => {
    try {
      await page.setContent(job.html, { waitUntil: 'load' });
      job.resolve(await page.pdf({ format: 'A4', printBackground: true, margin: { top: '15mm', bottom: '15mm', left: '12mm', right: '12mm' } }));
      idle.push(page);
    } catch (cause) {
      // A page that failed once is not trusted again.
      open--;
      await page.close().catch(() => undefined);
      job.reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'Chromium did not print the PDF' }, { cause }));
    }
  };
  /** Starts queued jobs on free pages, opening pages up to `size`. */
  const dispatch = (): void => {
    while (waiting() > 0) {
      const page = idle.pop();
      if (page !== undefined) {
        const job = nextJob();
        if (job === undefined) {
          idle.push(page);
          return;
        }
        void print(page, job).finally(dispatch);
        continue;
      }
      if (open >= size || opening >= waiting()) return;
      open++;
      opening++;
      void newPage().then(
        (p) => {
          opening--;
          if (closed) {
            void p.close().catch(() => undefined);
            return;
          }
          idle.push(p);
          dispatch();
        },
        (err: unknown) => {
          opening--;
          open--;
          // Chromium cannot start: every waiting render fails now instead of waiting for it.
          for (let job = nextJob(); job !== undefined; job = nextJob()) job.reject(err);
        },
      );
    }
  };
  return {
    render(html, renderOptions = {}) {
      if (closed) return Promise.reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'the renderer is closed' }));
      return new Promise<Buffer>((resolve, reject) => {
        const queue = queues[renderOptions.priority ?? 'normal'];
        const { signal } = renderOptions;
        const job: Job = { html, signal, resolve, reject };
        // Abandoned while waiting: out of the queue at once (once printing, it finishes).
        signal?.addEventListener(
          'abort',
          () => {
            const i = queue.indexOf(job);
            if (i < 0) return;
            queue.splice(i, 1);
            reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'the render was abandoned before a page was free' }));
          },
          { once: true },
        );
        queue.push(job);
        dispatch();
      });
    },
    async close() {
      closed = true;
      for (let job = nextJob(); job !== undefined; job = nextJob()) job.reject(new KisekiError('ERR_REPORT_RENDER', { reason: 'the renderer is closed' }));
      const b = browser;
      browser = undefined;
      idle.length = 0;
      open = 0;
      if (b !== undefined) await (await b.catch(() => undefined))?.close();
    },
  };
}
