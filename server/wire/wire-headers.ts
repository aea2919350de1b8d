// Headers for the wire path's calls: what the interceptors and services read and
// write through the Fetch API's Headers interface, without building one per call
// (a Fetch Headers copies and validates every field; a call reads two or three).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";

/** The fields of a Headers, in the order a Fetch Headers iterates them (sorted by name). */
abstract class HeadersBase {
  abstract get(name: string): string | null;
  protected abstract names(): string[];

  has(name: string): boolean {
    return this.get(name) !== null;
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void): void {
    for (const name of this.names().sort()) callback(this.get(name)!, name, this as unknown as Headers);
  }

  *entries(): Generator<[string, string]> {
    for (const name of this.names().sort()) yield [name, this.get(name)!];
  }

  *keys(): Generator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): Generator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): Generator<[string, string]> {
    return this.entries();
  }

  getSetCookie(): string[] {
    return [];
  }
}

/** A request's header fields, read straight from the HTTP/2 headers object (pseudo-headers left out). */
export class RequestHeaders extends HeadersBase {
  constructor(private readonly fields: IncomingHttpHeaders) {
    super();
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    if (key.startsWith(":")) return null;
    const value = this.fields[key];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : value;
  }

  protected names(): string[] {
    return Object.keys(this.fields).filter((k) => !k.startsWith(":"));
  }

  set(): void {
    throw new TypeError("request headers are read-only");
  }

  append(): void {
    throw new TypeError("request headers are read-only");
  }

  delete(): void {
    throw new TypeError("request headers are read-only");
  }

  /** As a Fetch Headers: for code that keeps them (nothing on the hot path does). */
  static view(fields: IncomingHttpHeaders): Headers {
    return new RequestHeaders(fields) as unknown as Headers;
  }
}

/** Response header or trailer fields a call builds up; names lower-case, several values joined as Fetch joins them. */
export class ResponseHeaders extends HeadersBase {
  private readonly fields = new Map<string, string>();

  constructor(init?: Record<string, string>) {
    super();
    if (init) for (const [k, v] of Object.entries(init)) this.fields.set(k, v);
  }

  get(name: string): string | null {
    return this.fields.get(name.toLowerCase()) ?? null;
  }

  set(name: string, value: string): void {
    this.fields.set(name.toLowerCase(), String(value));
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const had = this.fields.get(key);
    this.fields.set(key, had === undefined ? String(value) : `${had}, ${value}`);
  }

  delete(name: string): void {
    this.fields.delete(name.toLowerCase());
  }

  protected names(): string[] {
    return [...this.fields.keys()];
  }

  get size(): number {
    return this.fields.size;
  }

  /** The fields for `stream.respond` or `sendTrailers`, after `extra` (pseudo-headers, date). */
  toNode(extra?: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = { ...extra };
    for (const [k, v] of this.fields) out[k] = v;
    return out;
  }

  asHeaders(): Headers {
    return this as unknown as Headers;
  }
}

let dateSecond = -1;
let dateText = "";

/** The `date` field Node's compatibility API adds to every response, formatted once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
