// Streaming a call's HTTP answer: a returned Response whose body is a
// stream nobody has read goes out as the stream yields it, when the host
// streams this call's answer (runtime/src/response_sink.rs). Loaded last,
// so what every plain call touches in the snapshot stays where it was.
(function (internal) {
  "use strict";
  const { parse } = JSON;

  // Sends the answer's status and header pairs: true when its body is to
  // follow in chunks, false when the client went away, undefined when this
  // call's answer is not streamed (it is then answered whole).
  function start(status, headers) {
    const started = parse(internal.respondHead(JSON.stringify({ status, headers })));
    if (started.error) throw new TypeError(started.error.message);
    return started.undefined ? undefined : started.ok;
  }
  // Sends the next bytes of a started answer: false when the client went away.
  function send(bytes) {
    if (bytes.byteLength === 0) return true;
    const answer = parse(internal.respondChunk(bytes));
    if (answer.error) throw new TypeError(answer.error.message);
    return answer.ok !== false;
  }
  internal.respondStart = start;
  internal.respondSend = send;

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
      if (!send(value)) {
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
    const started = start(status, headers);
    if (started === undefined) return undefined;
    if (started) await streamOut(stream);
    else await stream.cancel();
    return { status, headers, body: "", latin1: true, streamed: true };
  };
})
