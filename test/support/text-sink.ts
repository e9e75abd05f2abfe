/** A writable stream that keeps what is written, for commands that take stdout / stderr streams in tests. */
import { Writable } from 'node:stream';

export type TextSink = Writable & { text(): string };

export function textSink(): TextSink {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as TextSink;
  sink.text = () => chunks.join('');
  return sink;
}
