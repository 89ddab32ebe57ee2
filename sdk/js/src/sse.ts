// Reading a Server-Sent Events stream (text/event-stream) from a fetch body.

/**
 * Calls `onEvent(name, data)` for each event until the stream ends, or
 * cancels it after `idleMs` without a byte (the server sends keep-alives; a
 * silent connection was dropped by something in between).
 */
export async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleMs: number,
  onEvent: (name: string, data: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  let name = "";
  let data: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (;;) {
      clearTimeout(timer);
      timer = setTimeout(() => reader.cancel(), idleMs);
      const { done, value } = await reader.read();
      if (done) return;
      const lines = (buffer + decoder.decode(value, { stream: true })).split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + (line[colon + 1] === " " ? 2 : 1));
        if (line === "") {
          if (data !== null) onEvent(name || "message", data);
          name = "";
          data = null;
        } else if (field === "event") {
          name = text;
        } else if (field === "data") {
          data = data === null ? text : `${data}\n${text}`;
        }
      }
    }
  } finally {
    clearTimeout(timer);
  }
}
