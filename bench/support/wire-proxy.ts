/**
 * A TCP proxy between one server and the database that counts MongoDB wire messages, so that
 * database round trips and bytes can be measured the same way for every server, without code
 * inside them. It sees what the driver's command monitoring would: one message per command
 * sent, one reply per command received; the driver's server monitoring (hello/isMaster
 * heartbeats, on connections of their own and as each pool connection's handshake) is counted
 * apart, as command monitoring leaves it out too.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;
const MONITORING_COMMANDS = new Set(['hello', 'ismaster', 'isMaster']);
// `multi: true` as BSON (type 0x08, key, value 0x01): how an updateMany differs on the wire
// from an updateOne, both being `update` commands.
const MULTI_TRUE = Buffer.from([0x08, ...Buffer.from('multi'), 0x00, 0x01]);

export interface WireCounters {
  /** Commands sent to the database (client → server messages other than monitoring). */
  commands: number;
  /** Replies received for them, and their bytes (headers included). */
  replies: number;
  bytesFromDb: number;
  bytesToDb: number;
  /** Command names, with `update` split into `update` and `update(multi)`. */
  byName: Record<string, number>;
  monitoringMessages: number;
  monitoringBytes: number;
}

export interface WireProxy {
  readonly port: number;
  /** A copy of the counters as they are now. */
  snapshot(): WireCounters;
  /** Commands sent but not yet answered. */
  pending(): number;
  /** When a command or its reply last went through (performance.now()); monitoring aside. */
  lastActivity(): number;
  close(): Promise<void>;
}

function emptyCounters(): WireCounters {
  return { commands: 0, replies: 0, bytesFromDb: 0, bytesToDb: 0, byName: {}, monitoringMessages: 0, monitoringBytes: 0 };
}

export function difference(after: WireCounters, before: WireCounters): WireCounters {
  const byName: Record<string, number> = {};
  for (const [name, count] of Object.entries(after.byName)) {
    const delta = count - (before.byName[name] ?? 0);
    if (delta) byName[name] = delta;
  }
  return {
    commands: after.commands - before.commands,
    replies: after.replies - before.replies,
    bytesFromDb: after.bytesFromDb - before.bytesFromDb,
    bytesToDb: after.bytesToDb - before.bytesToDb,
    byName,
    monitoringMessages: after.monitoringMessages - before.monitoringMessages,
    monitoringBytes: after.monitoringBytes - before.monitoringBytes,
  };
}

/**
 * Splits a byte stream into wire messages (each starts with its int32 little-endian length)
 * and hands each one over. Messages the caller needs whole are kept whole; of the others only
 * the first `prefix` bytes are kept, so large replies are never copied.
 */
class MessageSplitter {
  private head = Buffer.alloc(0);
  private skip = 0;

  constructor(
    private readonly prefix: (length: number) => number,
    private readonly onMessage: (message: Buffer, length: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skip > 0) {
        const taken = Math.min(this.skip, chunk.length - offset);
        this.skip -= taken;
        offset += taken;
        continue;
      }
      const wanted = this.head.length < 4 ? 4 : this.prefix(this.head.readInt32LE(0));
      const taken = Math.min(wanted - this.head.length, chunk.length - offset);
      this.head = Buffer.concat([this.head, chunk.subarray(offset, offset + taken)]);
      offset += taken;
      if (this.head.length < 4) continue;
      const length = this.head.readInt32LE(0);
      const need = this.prefix(length);
      if (this.head.length < need) continue;
      this.onMessage(this.head, length);
      this.skip = length - this.head.length;
      this.head = Buffer.alloc(0);
    }
  }
}

/** The first key of the first BSON document in the message: the command's name. */
function commandName(message: Buffer): string {
  const opCode = message.readInt32LE(12);
  let documentStart: number;
  if (opCode === OP_MSG) {
    // flagBits, then sections: document sequences (kind 1) are stepped over to the body (kind 0).
    let offset = 20;
    while (offset < message.length && message[offset] !== 0) {
      offset += 1 + message.readInt32LE(offset + 1);
    }
    documentStart = offset + 1;
  } else if (opCode === OP_QUERY) {
    const collectionEnd = message.indexOf(0, 20);
    documentStart = collectionEnd + 9;
  } else {
    return `op${opCode}`;
  }
  const keyStart = documentStart + 5;
  const keyEnd = message.indexOf(0, keyStart);
  return keyEnd > keyStart ? message.toString('latin1', keyStart, keyEnd) : 'unknown';
}

export function startWireProxy(upstreamHost: string, upstreamPort: number): Promise<WireProxy> {
  const counters = emptyCounters();
  let last = performance.now();
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, upstreamHost);
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // Request ids of this connection's monitoring messages: their replies are monitoring too.
    const monitoringIds = new Set<number>();

    // Client → server messages are small: kept whole, to read the command and `multi`.
    const fromClient = new MessageSplitter(
      (length) => length,
      (message, length) => {
        const name = commandName(message);
        if (MONITORING_COMMANDS.has(name)) {
          monitoringIds.add(message.readInt32LE(4));
          counters.monitoringMessages += 1;
          counters.monitoringBytes += length;
          return;
        }
        last = performance.now();
        const counted = name === 'update' && message.indexOf(MULTI_TRUE, 20) >= 0 ? 'update(multi)' : name;
        counters.commands += 1;
        counters.bytesToDb += length;
        counters.byName[counted] = (counters.byName[counted] ?? 0) + 1;
      },
    );
    // Server → client: the header and flag bits are enough.
    const fromServer = new MessageSplitter(
      (length) => Math.min(length, 20),
      (message, length) => {
        const responseTo = message.readInt32LE(8);
        const opCode = message.readInt32LE(12);
        if (monitoringIds.delete(responseTo)) {
          // A streamed (exhaust) hello answers again, each time to the previous reply's id.
          if (opCode === OP_MSG && message.length >= 20 && message.readUInt32LE(16) & MORE_TO_COME) {
            monitoringIds.add(message.readInt32LE(4));
          }
          counters.monitoringMessages += 1;
          counters.monitoringBytes += length;
          return;
        }
        last = performance.now();
        counters.replies += 1;
        counters.bytesFromDb += length;
      },
    );

    client.on('data', (chunk: Buffer) => fromClient.push(chunk));
    upstream.on('data', (chunk: Buffer) => fromServer.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        port,
        snapshot: () => ({ ...counters, byName: { ...counters.byName } }),
        pending: () => counters.commands - counters.replies,
        lastActivity: () => last,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
