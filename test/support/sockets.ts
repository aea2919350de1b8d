// Raw connections for tests of what the server does with clients no library
// would be: silent, slow, idle, gone at a chosen moment, or writing HTTP/2
// frames by hand.
import type http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";

/** A connected TCP socket to 127.0.0.1:port (or a TLS one); its errors are expected (the server may reset it). */
export async function rawSocket(port: number, tlsOptions?: tls.ConnectionOptions): Promise<net.Socket> {
  const socket = tlsOptions ? tls.connect({ port, host: "127.0.0.1", ...tlsOptions }) : net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once(tlsOptions ? "secureConnect" : "connect", () => resolve());
    socket.once("close", () => reject(new Error("closed before it connected")));
  });
  return socket;
}

/**
 * Resolves once the socket (or HTTP/2 session) is closed, by the server for these tests;
 * rejects after timeoutMs. A socket's incoming bytes are read and dropped meanwhile.
 */
export function closedWithin(connection: net.Socket | http2.ClientHttp2Session, timeoutMs: number, what: string): Promise<void> {
  if (connection.destroyed) return Promise.resolve();
  // A socket nobody reads never sees the end of its stream.
  if ("resume" in connection) connection.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: still open after ${timeoutMs} ms`)), timeoutMs);
    connection.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Resolves with what the socket received once it contains `text` (`times` times); rejects after timeoutMs or at close. */
export function receivedText(socket: net.Socket, text: string, timeoutMs: number, times = 1): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const finish = (err?: Error) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (err) reject(err);
      else resolve(got);
    };
    const onData = (chunk: Buffer) => {
      got += chunk.toString("latin1");
      if (got.split(text).length > times) finish();
    };
    const onClose = () => finish(new Error(`closed before ${JSON.stringify(text)} arrived; got ${JSON.stringify(got.slice(0, 200))}`));
    const timer = setTimeout(() => finish(new Error(`no ${JSON.stringify(text)} within ${timeoutMs} ms; got ${JSON.stringify(got.slice(0, 200))}`)), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

/** The client connection preface of HTTP/2 (RFC 9113 §3.4). */
export const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const frameType = { data: 0, headers: 1, settings: 4 } as const;

/** One HTTP/2 frame. */
export function http2Frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** A header block of literal fields without indexing (HPACK §6.2.2), no Huffman: names and values under 127 bytes. */
export function headerBlock(headers: Record<string, string>): Buffer {
  const fields = Object.entries(headers).map(([name, value]) => {
    if (name.length > 126 || value.length > 126) throw new Error("headerBlock: names and values under 127 bytes");
    return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
  });
  return Buffer.concat(fields);
}
