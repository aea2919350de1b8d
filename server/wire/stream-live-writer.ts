// A wire-path tail's live writer: the thread's live events, framed once for
// all its tailers, go straight onto the call's HTTP/2 stream. Only while the
// client keeps up (the stream's buffer is under its high-water mark): else the
// tail takes over again and catches up from storage once the client drains.
import type { ServerHttp2Stream } from "node:http2";
import type { LiveWriter } from "../live/live-writer.js";
import type { ResponseHeaders } from "./wire-headers.js";
import type { WireReply } from "./wire-protocols.js";

export class StreamLiveWriter implements LiveWriter {
  written = 0;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly reply: WireReply,
    private readonly header: ResponseHeaders,
  ) {}

  write(frames: Buffer): boolean {
    // A response Connect would compress is the tail's to write (the frames are uncompressed).
    if (!this.reply.open || this.stream.writableNeedDrain || !this.reply.sendsUncompressed(frames.byteLength)) return false;
    try {
      this.reply.head(this.header);
      this.stream.write(frames);
      return true;
    } catch {
      // A stream torn down under the write: its tail ends on the stream's close; the thread's other tails go on.
      return false;
    }
  }
}
