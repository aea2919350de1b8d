// gRPC clients over a fixed set of HTTP/2 connections, closed explicitly so the
// process can exit (an idle session would otherwise stay open for 15 minutes).
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EventService } from "../gen/eventide/v1/event_service_pb.js";
import { TurnService } from "../gen/eventide/v1/turn_service_pb.js";

export class Connections {
  private readonly sessions: Http2SessionManager[] = [];
  private readonly eventClients: Client<typeof EventService>[] = [];
  readonly turns: Client<typeof TurnService>;

  constructor(baseUrl: string, count: number) {
    for (let i = 0; i < count; i++) {
      const sessionManager = new Http2SessionManager(baseUrl);
      const transport = createGrpcTransport({ baseUrl, sessionManager });
      this.sessions.push(sessionManager);
      this.eventClients.push(createClient(EventService, transport));
    }
    this.turns = createClient(TurnService, createGrpcTransport({ baseUrl, sessionManager: this.sessions[0] }));
  }

  /** The EventService client of connection `i` modulo the number of connections. */
  events(i: number): Client<typeof EventService> {
    return this.eventClients[i % this.eventClients.length];
  }

  /** Creates `n` empty threads (each holds `thread.created` as seq 1). */
  async createThreads(n: number): Promise<string[]> {
    const created = await Promise.all(Array.from({ length: n }, () => this.turns.createThread({})));
    return created.map((res) => res.thread!.threadId);
  }

  close(): void {
    for (const session of this.sessions) session.abort();
  }
}
