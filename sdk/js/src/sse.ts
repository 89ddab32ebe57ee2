// Reading Server-Sent Events (text/event-stream) from a fetch body, where
// there is no EventSource: the fields the client uses, `event` and one line
// of `data`, which is all the server sends.

/** A stream idle this long (the server sends keep-alives every 15 s) was dropped on the way. */
const IDLE_MS = 60_000;

/**
 * Calls `onEvent(data)` for each event named `name` until the stream ends,
 * or cancels it after IDLE_MS without a byte (a silent connection was
 * dropped by something in between).
 */
export async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  name: string,
  onEvent: (data: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (;;) {
      clearTimeout(timer);
      timer = setTimeout(() => reader.cancel(), IDLE_MS);
      const { done, value } = await reader.read();
      if (done) return;
      // Events end with a blank line; the last piece may be incomplete.
      const events = (buffer + decoder.decode(value, { stream: true })).split(/\r?\n\r?\n/);
      buffer = events.pop()!;
      for (const lines of events) {
        const data = /^data: ?(.*)/m.exec(lines);
        if (data && /^event: ?(.*)/m.exec(lines)?.[1] === name) onEvent(data[1]);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
