/**
 * RFC 6587 framing of a syslog TCP (or TLS) stream, chosen per message:
 * octet counting (`LEN SP <PRI>…`) when the frame starts with digits, a
 * space and `<`; otherwise newline framing (LF, a trailing CR dropped). A
 * message longer than `maxLineBytes` is skipped (to its LF, or its LEN bytes)
 * and reported as `line_too_long`, so one endless line cannot grow the
 * buffer. Bare lines that start with digits (a Squid time) stay newline
 * framed: octet counting needs `<` right after the length.
 */

/** What the framer hands out: a message, or a count of oversized ones skipped. */
export interface FrameSink {
  message(line: string): void;
  tooLong(): void;
}

/** A stateful framer for one connection. */
export interface SyslogFramer {
  /** Feeds received bytes; calls the sink for every complete message. */
  push(chunk: Buffer): void;
  /** At end of stream: a last unterminated LF-framed message is delivered (rsyslog always ends lines, others may not). */
  end(): void;
}

const LF = 10;
const SP = 32;
const LT = 60;

/**
 * Makes a framer that delivers each message to `sink`.
 * @param maxLineBytes longest message in bytes (without framing); longer ones are skipped and counted
 */
export function createSyslogFramer(maxLineBytes: number, sink: FrameSink): SyslogFramer {
  let buf: Buffer = Buffer.alloc(0);
  // Bytes still to skip of an oversized message: -1 none, Infinity up to the next LF.
  let skip = 0;
  const decode = (b: Buffer, start: number, end: number): string => {
    let e = end;
    if (e > start && b[e - 1] === 13) e--;
    return b.toString('utf8', start, e);
  };
  const drain = (): void => {
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      if (skip === Infinity) {
        const lf = buf.indexOf(LF, pos);
        if (lf < 0) {
          pos = n;
          break;
        }
        pos = lf + 1;
        skip = 0;
        continue;
      }
      if (skip > 0) {
        const take = Math.min(skip, n - pos);
        pos += take;
        skip -= take;
        continue;
      }
      // Octet counting: up to 10 digits, a space, then '<'.
      let d = pos;
      while (d < n && d - pos < 10 && buf[d]! >= 48 && buf[d]! <= 57) d++;
      if (d > pos && buf[pos] !== 48) {
        if (d === n || (d + 1 === n && buf[d] === SP)) break; // wait for the byte that decides
        if (buf[d] === SP && buf[d + 1] === LT) {
          const len = Number(buf.toString('latin1', pos, d));
          const start = d + 1;
          if (len > maxLineBytes) {
            sink.tooLong();
            skip = len;
            pos = start;
            continue;
          }
          if (n - start < len) break;
          sink.message(decode(buf, start, start + len).replace(/\n$/, ''));
          pos = start + len;
          continue;
        }
      }
      const lf = buf.indexOf(LF, pos);
      if (lf < 0) {
        if (n - pos > maxLineBytes) {
          sink.tooLong();
          skip = Infinity;
          pos = n;
        }
        break;
      }
      if (lf - pos > maxLineBytes + 1) sink.tooLong();
      else if (lf > pos) sink.message(decode(buf, pos, lf));
      pos = lf + 1;
    }
    buf = pos >= buf.length ? Buffer.alloc(0) : buf.subarray(pos);
  };
  return {
    push(chunk) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      drain();
    },
    end() {
      if (skip === 0 && buf.length > 0) {
        const rest = decode(buf, 0, buf.length);
        if (rest.trim() !== '') sink.message(rest);
      }
      buf = Buffer.alloc(0);
    },
  };
}
