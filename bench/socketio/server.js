// A Socket.IO signaling server as WebRTC tutorials write one, scaled out as their users
// do: every front process joins the others through Redis, with the pub/sub adapter
// (ADAPTER=pubsub, @socket.io/redis-adapter) or the streams one (ADAPTER=streams,
// @socket.io/redis-streams-adapter). A client `join`s a room (the ack is its socket id)
// and `signal`s another socket by id; the server relays it with `io.to(id).emit`.
// Environment: PORT, REDIS_URL, ADAPTER. Prints `listening PORT` once it accepts.
import { createServer } from 'node:http';

import { createAdapter } from '@socket.io/redis-adapter';
import { createAdapter as createStreamsAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';

const port = Number(process.env.PORT);
const url = process.env.REDIS_URL;
const kind = process.env.ADAPTER ?? 'pubsub';

const http = createServer();
const io = new Server(http, { serveClient: false, transports: ['websocket'] });

if (kind === 'pubsub') {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
} else if (kind === 'streams') {
  const client = createClient({ url });
  await client.connect();
  io.adapter(createStreamsAdapter(client));
} else {
  throw new Error(`ADAPTER must be pubsub or streams, not ${kind}`);
}

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack(socket.id);
  });
  socket.on('signal', (message) => {
    if (message && typeof message.to === 'string') {
      io.to(message.to).emit('signal', { from: socket.id, data: message.data });
    }
  });
});

const stop = () => io.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
http.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
