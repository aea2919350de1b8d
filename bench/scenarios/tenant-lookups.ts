// Lookups by id as one tenant sees them: GetThread, GetTurn and GetEvent of
// the caller's own id, of another tenant's id and of an unknown id, on a
// server child of the scenario's own with two tenants' keys. Another tenant's
// id must answer as an unknown one does, through the same lookups, so the
// medians of those two should match (the own id is answered by the hot tier).
// The calls are interleaved in rounds, in a shuffled order each, so drift in
// the machine's load reaches every kind alike. Correctness: another tenant's
// id must answer NOT_FOUND with the message of an unknown id.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ulid } from "ulid";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { nowMs } from "../clock.js";
import { distribution } from "../percentiles.js";
import { layoutRow, type Measurement, type ScenarioResult } from "../result.js";
import { closeAndReport, startServerUnderTest } from "../server-under-test.js";
import { freshTierEnv, type Services, type Tier } from "../tier-env.js";

export interface TenantLookupsParams {
  name: string;
  tier: Tier;
  services: Services;
  logLevel: string;
  profileDir?: string;
  /** Unmeasured rounds first (connections and code paths warm). */
  warmupRounds: number;
  /** Each round makes every lookup once: 3 RPCs × own, another tenant's, unknown. */
  rounds: number;
}

const tenantKeys = { acme: "bench-acme-admin-key-1", globex: "bench-globex-admin-key" };
const kinds = ["own", "another tenant's", "unknown"] as const;
type Kind = (typeof kinds)[number];

export async function tenantLookups(p: TenantLookupsParams): Promise<ScenarioResult> {
  const failures: string[] = [];
  const notes: string[] = [];
  const measurements: Measurement[] = [layoutRow(p.name, "own server child")];
  const apiKeys = Object.entries(tenantKeys).map(([tenant, key]) => `${key}:${tenant}:admin`).join(",");
  const server = await startServerUnderTest({
    tiers: freshTierEnv(p.tier, p.services, { EVENTIDE_API_KEYS: apiKeys }),
    ownsTiers: true,
    logLevel: p.logLevel,
    profileDir: p.profileDir,
  });
  const sessions: Http2SessionManager[] = [];
  const clientsOf = (key: string) => {
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    };
    const sessionManager = new Http2SessionManager(server.baseUrl);
    sessions.push(sessionManager);
    const transport = createGrpcTransport({ baseUrl: server.baseUrl, sessionManager, interceptors: [bearer] });
    return { turns: createClient(TurnService, transport), events: createClient(EventService, transport) };
  };
  try {
    // Each tenant: a thread with a turn and an event of a client-chosen id.
    const ids = async (key: string) => {
      const clients = clientsOf(key);
      const { thread, turn } = await clients.turns.submitTurn({ input: { text: "lookup bench" } });
      const eventId = `bench-${ulid()}`;
      await clients.events.appendEvents({ threadId: thread!.threadId, events: [{ eventId, type: "custom" }] });
      return { clients, threadId: thread!.threadId, turnId: turn!.turnId, eventId };
    };
    const acme = await ids(tenantKeys.acme);
    const globex = await ids(tenantKeys.globex);
    const caller = acme.clients;
    const idOf = (kind: Kind, of: "threadId" | "turnId" | "eventId") =>
      kind === "own" ? acme[of] : kind === "another tenant's" ? globex[of] : of === "eventId" ? `bench-${ulid()}` : ulid();
    const lookups = {
      GetThread: (kind: Kind) => caller.turns.getThread({ threadId: idOf(kind, "threadId") }),
      GetTurn: (kind: Kind) => caller.turns.getTurn({ turnId: idOf(kind, "turnId") }),
      GetEvent: (kind: Kind) => caller.events.getEvent({ eventId: idOf(kind, "eventId") }),
    };
    const calls = Object.entries(lookups).flatMap(([rpc, call]) => kinds.map((kind) => ({ rpc, kind, call: () => call(kind) })));
    const samples = new Map(calls.map((c) => [`${c.rpc} ${c.kind}`, [] as number[]]));
    const answers = new Map<string, string>();
    for (let round = 0; round < p.warmupRounds + p.rounds; round++) {
      for (const c of shuffled(calls)) {
        const started = nowMs();
        let answer = "ok";
        try {
          await c.call();
        } catch (err) {
          const e = ConnectError.from(err);
          answer = `${Code[e.code]}: ${e.rawMessage.replaceAll(/[0-9A-HJKMNP-TV-Z]{26}/g, "<id>")}`;
        }
        const took = nowMs() - started;
        if (round >= p.warmupRounds) samples.get(`${c.rpc} ${c.kind}`)!.push(took);
        answers.set(`${c.rpc} ${c.kind}`, answer);
      }
    }
    for (const rpc of Object.keys(lookups)) {
      const own = answers.get(`${rpc} own`);
      const foreign = answers.get(`${rpc} another tenant's`);
      const unknown = answers.get(`${rpc} unknown`);
      if (own !== "ok") failures.push(`${p.name}: ${rpc} of the caller's own id answered ${own}`);
      if (!unknown?.startsWith("NotFound")) failures.push(`${p.name}: ${rpc} of an unknown id answered ${unknown}`);
      if (foreign !== unknown) failures.push(`${p.name}: ${rpc} of another tenant's id answered ${foreign}, of an unknown id ${unknown}`);
      for (const kind of kinds) {
        const d = distribution(samples.get(`${rpc} ${kind}`)!);
        measurements.push({ scenario: p.name, metric: `${rpc} p50, ${kind} id`, value: d.p50, unit: "ms" });
      }
    }
    measurements.push({ scenario: p.name, metric: "lookups of each kind (measured)", value: p.rounds, unit: "count" });
  } finally {
    for (const s of sessions) s.abort();
    await closeAndReport(server, `${p.name}: its server`, failures, notes);
  }
  return { measurements, failures, notes };
}

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
