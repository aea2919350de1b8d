// A tail's way to its client that skips the tail's generator: the transport
// (the wire path, for HTTP/2 binary streams) puts one in the call's context
// values; the tail writes live events through it as bytes framed once for
// every tailer of the thread.
import { createContextKey } from "@connectrpc/connect";

export interface LiveWriter {
  /**
   * Writes gRPC-style envelopes (flags 0: uncompressed), one response each, now; false (nothing
   * written) when the client is not keeping up, is gone, or would get these responses compressed.
   */
  write(frames: Buffer): boolean;
  /** Responses written this way (the call's log line counts them with the rest). */
  written: number;
}

/** Set by a transport that can take live events as bytes; absent otherwise (the tail then yields them). */
export const liveWriterKey = createContextKey<LiveWriter | undefined>(undefined, { description: "live writer" });
