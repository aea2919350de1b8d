// Small builders for test input.
import { ulid } from "ulid";
import type { NewEvent } from "../../server/domain/records.js";

export function newEvent(type = "message.delta", over: Partial<NewEvent> = {}): NewEvent {
  return {
    eventId: ulid(),
    clientSuppliedId: false,
    turnId: "",
    type,
    payload: { delta: "hi" },
    metadata: {},
    schemaVersion: 1,
    level: "info",
    ...over,
  };
}
