// The Node.js baseline of bench/run's web case: one room made of every
// connected client; each text message received is sent to all of them,
// its sender included (percored's rooms echo a line to its sender too).
// Built on npm's `ws`, the usual choice for this job, with
// permessage-deflate off (percored has none) and the broadcast written the
// way ws's own README shows it, so this is the server people run.
//
// Usage: node ws_broadcast.js PORT   (loopback only)
// Dependencies: `npm ci` in bench/baselines/ (package-lock.json pins ws).
'use strict';

const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 8081);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  clientTracking: true,
  // ws's default backlog is 511; a thousand members connect at once.
  backlog: 4096,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (isBinary)
      return; // the benchmark speaks text, as percored's JSON face does
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN)
        client.send(data, { binary: false });
    }
  });
  ws.on('error', () => ws.terminate());
});

wss.on('listening', () => {
  process.stdout.write(`ws_broadcast listening on 127.0.0.1:${port}\n`);
});

// bench/run stops it by PID with SIGTERM: close at once.
process.on('SIGTERM', () => process.exit(0));
