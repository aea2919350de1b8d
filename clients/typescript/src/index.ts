// @eventide/client: the transport-agnostic core. Node code imports
// "@eventide/client/node", browser code "@eventide/client/web"; both
// re-export everything here.
export { type AppendOptions, createEventideClient, EventideClient, type EventInit, type SubmitTurnInit } from "./client.js";
export { type Tail, type TailOptions, type TailState, type ReconnectInfo, tailThread } from "./tail.js";
export { TailCursor, type Verdict } from "./tail-cursor.js";
export { type AgentTurn, type RunAgentOptions, type TurnHandler, runAgent } from "./agent/run-agent.js";
export { TurnWriter } from "./agent/turn-writer.js";
export { TurnStopped, type TurnStopReason } from "./agent/turn-stopped.js";
export { type ApiKey, bearer } from "./bearer.js";
export type { CallPolicy, ConnectionOptions, Protocol } from "./options.js";
export { type Backoff, backoffMs, defaultBackoff, isTransient, retrying, type RetryOptions } from "./retry.js";
export { isTerminal } from "./terminal-codes.js";
