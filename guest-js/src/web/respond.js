// Streaming a call's HTTP answer: a returned Response whose body is a
// stream nobody has read goes out as the stream yields it, when the host
// streams this call's answer (runtime/src/response_sink.rs). Loaded last,
// so what every plain call touches in the snapshot stays where it was.
(function (internal) {
  "use strict";
  const { parse } = JSON;

  // Sends the stream's chunks until it ends, or cancels it when the client
  // went away.
  async function streamOut(stream) {
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (!(value instanceof Uint8Array)) {
        const error = new TypeError("a body stream chunk is not a Uint8Array");
        await reader.cancel(error);
        throw error;
      }
      if (value.byteLength === 0) continue;
      const answer = parse(internal.respondChunk(value));
      if (answer.error) throw new TypeError(answer.error.message);
      if (answer.ok === false) {
        await reader.cancel();
        return;
      }
    }
  }

  // The description of a Response streamed out ({status, headers, streamed}),
  // or undefined when it is answered whole.
  internal.streamAnswer = async function streamAnswer(response) {
    const stream = internal.unreadStream(response);
    if (!stream) return undefined;
    const status = response.status;
    const headers = Array.from(response.headers);
    const started = parse(internal.respondHead(JSON.stringify({ status, headers })));
    if (started.error) throw new TypeError(started.error.message);
    if (started.undefined) return undefined;
    if (started.ok) await streamOut(stream);
    else await stream.cancel();
    return { status, headers, body: "", latin1: true, streamed: true };
  };
})
