// gRPC and protobuf on the wire, for the bench's lean clients and its bare
// floor servers: a message's 5-byte frame (flag 0, big-endian length), frames
// cut out of a stream's chunks, and a reader that walks a message's fields in
// place (no objects per field: the clients' own cost is what they exist to
// keep out of the figures). Only what the bench reads and writes is here.
import { WireType } from "@bufbuild/protobuf/wire";

/** One gRPC message frame around `message`. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * Cuts whole messages out of a stream's chunks (a frame may span chunks, a chunk hold many frames).
 * The chunks of an unfinished frame are kept apart and joined once it is whole: joining at every
 * chunk would copy a large frame (a batch of 500 events, 150 kB in 16 kB chunks) ten times over.
 */
export class FrameReader {
  private readonly parts: Buffer[] = [];
  private partsLength = 0;
  /** The length of the frame the parts begin, once its 5-byte head is in (else -1). */
  private frameLength = -1;

  /** Calls `onMessage` with each whole message's bounds; one returning true stops the reading (the rest is dropped). */
  push(chunk: Buffer, onMessage: (buf: Buffer, from: number, end: number) => boolean | void): boolean {
    if (this.parts.length > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.frameLength < 0 && this.partsLength >= 5) this.frameLength = Buffer.concat(this.parts, 5).readUInt32BE(1);
      if (this.frameLength < 0 || this.partsLength < 5 + this.frameLength) return false;
      chunk = Buffer.concat(this.parts, this.partsLength);
      this.parts.length = 0;
      this.partsLength = 0;
      this.frameLength = -1;
    }
    let offset = 0;
    while (chunk.length - offset >= 5) {
      const length = chunk.readUInt32BE(offset + 1);
      if (chunk.length - offset < 5 + length) break;
      if (onMessage(chunk, offset + 5, offset + 5 + length)) return true;
      offset += 5 + length;
    }
    if (offset < chunk.length) {
      const rest = chunk.subarray(offset);
      this.parts.push(rest);
      this.partsLength = rest.length;
      if (rest.length >= 5) this.frameLength = rest.readUInt32BE(1);
    }
    return false;
  }
}

/** A cursor over one message's bytes buf[pos, end). */
export class WireReader {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Numbers past 2^53 lose precision; the bench's seqs and lengths never get there. */
  varint(): number {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      const b = this.buf[this.pos++];
      value += (b & 127) * scale;
      if (b < 128) return value;
    }
  }

  /** The next tag: field number and wire type. */
  tag(): [no: number, wireType: number] {
    const tag = this.varint();
    return [tag >>> 3, tag & 7];
  }

  /** Steps over a field's value; a length-delimited one's bounds are returned. */
  skip(wireType: number): [from: number, end: number] {
    const from = this.pos;
    if (wireType === WireType.Varint) this.varint();
    else if (wireType === WireType.Bit64) this.pos += 8;
    else if (wireType === WireType.Bit32) this.pos += 4;
    else if (wireType === WireType.LengthDelimited) {
      const length = this.varint();
      return [this.pos, (this.pos += length)];
    } else throw new Error(`unexpected wire type ${wireType}`);
    return [from, this.pos];
  }
}

/** The varint field `field` of the message in buf[from, end) (0 when absent). */
export function varintField(buf: Uint8Array, from: number, end: number, field: number): number {
  const r = new WireReader(buf, from, end);
  let found = 0;
  while (!r.done) {
    const [no, wireType] = r.tag();
    if (no === field && wireType === WireType.Varint) found = r.varint();
    else r.skip(wireType);
  }
  return found;
}

/** The bounds of the first length-delimited field `field` of the message in buf[from, end). */
export function bytesField(buf: Uint8Array, from: number, end: number, field: number): [number, number] | undefined {
  const r = new WireReader(buf, from, end);
  while (!r.done) {
    const [no, wireType] = r.tag();
    const bounds = r.skip(wireType);
    if (no === field && wireType === WireType.LengthDelimited) return bounds;
  }
  return undefined;
}

// Protobuf writing for the floors: sizes first, then one buffer.

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** A length-delimited field's size: its tag (one byte, fields 1-15), length and bytes. */
export function delimitedSize(length: number): number {
  return 1 + varintSize(length) + length;
}

/** Writes field `no` (1-15) as a length-delimited field holding `bytes`. */
export function writeDelimited(buf: Buffer, pos: number, no: number, bytes: Uint8Array): number {
  buf[pos++] = (no << 3) | WireType.LengthDelimited;
  pos = writeVarint(buf, pos, bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/** Writes field `no` (1-15) as a varint. */
export function writeVarintField(buf: Buffer, pos: number, no: number, n: number): number {
  buf[pos++] = (no << 3) | WireType.Varint;
  return writeVarint(buf, pos, n);
}
