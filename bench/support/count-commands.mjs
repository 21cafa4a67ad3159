/**
 * Loaded into every server under test with `node --import`: counts the database commands its
 * MongoDB driver sends (the round trips), by name, and how many await their reply, and
 * answers the benchmark's 'commands' message with them over the IPC channel. With
 * BENCH_COMMAND_SPAN set it prints, on exit, the time from the first command to the last reply.
 *
 * It wraps Connection.prototype.command, the one method every command goes through, instead of
 * turning command monitoring on: with monitoring on, the driver deserializes every reply a
 * second time to put it in a CommandSucceededEvent, which would add to the very CPU measured.
 * The handshake and heartbeats (hello) are left out, as command monitoring leaves them out.
 */
import { createRequire } from 'node:module';

// The server's own copy of the driver: servers run with the project root as working directory.
const require = createRequire(`${process.cwd()}/package.json`);
const { Connection } = require('mongodb/lib/cmap/connection.js');

const HANDSHAKE = new Set(['hello', 'ismaster', 'isMaster']);
const counts = {};
let pending = 0;
let first;
let last;

const command = Connection.prototype.command;
Connection.prototype.command = async function (ns, cmd, ...rest) {
  const name = Object.keys(cmd)[0];
  if (HANDSHAKE.has(name)) return command.call(this, ns, cmd, ...rest);
  // An updateMany is an `update` command whose statement says `multi`; a bulk write sends its
  // statements as a document sequence.
  const statements = cmd.updates?.documents ?? cmd.updates;
  const key = name === 'update' && Array.isArray(statements) && statements.some((update) => update.multi) ? 'updateMany' : name;
  counts[key] = (counts[key] ?? 0) + 1;
  pending += 1;
  first ??= performance.now();
  try {
    return await command.call(this, ns, cmd, ...rest);
  } finally {
    pending -= 1;
    last = performance.now();
  }
};

// For a command-line run (the integrity scan): how long its database work took, start-up aside.
if (process.env.BENCH_COMMAND_SPAN)
  process.on('exit', () => process.stderr.write(`database commands took ${first === undefined ? 'no' : (last - first).toFixed(1)} ms\n`));

process.on('message', (message) => {
  if (message === 'commands') process.send({ counts, pending });
});
// A server outlives no benchmark, however that ends; and the channel alone keeps no server alive.
process.on('disconnect', () => process.exit(0));
process.channel?.unref();
