// How an event sits in a thread stream: the entry id is the seq, field `e` a
// compact JSON body, field `c` the append time (Redis TIME, ms).
import type { NewEvent, StoredEvent } from "../../../domain/records.js";

interface Body {
  id: string;
  tu: string;
  ty: string;
  p: StoredEvent["payload"];
  m: Record<string, string>;
  sv: number;
  tn: string;
  l: StoredEvent["level"];
}

export function encodeBody(e: NewEvent, tenantId: string): string {
  // Spliced by hand so a payload the caller already serialized is not serialized again.
  const payload = e.payloadJson ?? JSON.stringify(e.payload);
  return `{"id":${JSON.stringify(e.eventId)},"tu":${JSON.stringify(e.turnId)},"ty":${JSON.stringify(e.type)},"p":${payload},"m":${JSON.stringify(e.metadata)},"sv":${e.schemaVersion},"tn":${JSON.stringify(tenantId)},"l":${JSON.stringify(e.level)}}`;
}

export function decodeEntry(threadId: string, entryId: string, fields: Record<string, string>): StoredEvent {
  const body = fields.e;
  const b = JSON.parse(body) as Body;
  return {
    eventId: b.id,
    threadId,
    turnId: b.tu,
    seq: Number(entryId.slice(0, entryId.indexOf("-"))),
    type: b.ty,
    payload: b.p,
    metadata: b.m,
    schemaVersion: b.sv,
    createdAt: Number(fields.c),
    tenantId: b.tn,
    level: b.l,
    payloadJson: payloadText(body, b),
  };
}

/**
 * The payload's own text within the body, found by writing the fields around
 * it again as encodeBody wrote them (JSON.stringify gives back the text it
 * parsed), so the payload is never serialized again; undefined if the body
 * was written some other way.
 */
function payloadText(body: string, b: Body): string | undefined {
  const before = `{"id":${JSON.stringify(b.id)},"tu":${JSON.stringify(b.tu)},"ty":${JSON.stringify(b.ty)},"p":`;
  const after = `,"m":${JSON.stringify(b.m)},"sv":${b.sv},"tn":${JSON.stringify(b.tn)},"l":${JSON.stringify(b.l)}}`;
  if (!body.startsWith(before) || !body.endsWith(after)) return undefined;
  return body.slice(before.length, body.length - after.length);
}
