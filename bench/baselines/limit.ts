/**
 * The limit: bare Fastify and the raw driver running the fewest queries that answer each
 * benchmarked route, with no validation, no logging and no framework between the route and the
 * query. Ids are taken as ObjectIds. Env: MONGODB_URI, PORT.
 */
import Fastify, { type FastifyReply } from 'fastify';
import { type Document, MongoClient, ObjectId } from 'mongodb';

/** The service's default (MAX_DEVICES_PER_ACCOUNT). */
const MAX_DEVICES_PER_ACCOUNT = 10_000;

const client = await new MongoClient(process.env.MONGODB_URI!).connect();
const accounts = client.db().collection<{ _id: ObjectId; deviceIds: ObjectId[] }>('accounts');
const devices = client.db().collection('devices');
const app = Fastify();
const notFound = (reply: FastifyReply) => reply.code(404).send({ statusCode: 404, error: 'Not Found' });
const inOrder = (ids: readonly ObjectId[], found: readonly Document[]) => {
  const byId = new Map(found.map((device) => [device._id.toHexString(), device]));
  return ids.flatMap((id) => byId.get(id.toHexString()) ?? []);
};

type Route = { Params: { id: string; fk: string }; Querystring: { filter?: string; include?: string } };

app.get<Route>('/api/accounts/:id', async (request, reply) => {
  const account = await accounts.findOne({ _id: new ObjectId(request.params.id) });
  if (!account) return notFound(reply);
  if (request.query.include !== 'devices') return account;
  return { ...account, devices: inOrder(account.deviceIds, await devices.find({ _id: { $in: account.deviceIds } }).toArray()) };
});

app.get<Route>('/api/accounts/:id/devices', async (request, reply) => {
  const { skip = 0, limit = 100 } = JSON.parse(request.query.filter ?? '{}') as { skip?: number; limit?: number };
  const [slice] = await accounts
    .aggregate<{ total: number; ids: ObjectId[] }>([
      { $match: { _id: new ObjectId(request.params.id) } },
      { $project: { _id: 0, total: { $size: '$deviceIds' }, ids: { $slice: ['$deviceIds', skip, limit] } } },
    ])
    .toArray();
  if (!slice) return notFound(reply);
  return reply.header('X-Total-Count', slice.total).send(inOrder(slice.ids, await devices.find({ _id: { $in: slice.ids } }).toArray()));
});

app.put<Route>('/api/accounts/:id/devices/rel/:fk', async (request, reply) => {
  const id = new ObjectId(request.params.fk);
  const device = await devices.findOne({ _id: id });
  if (!device) return notFound(reply);
  // The size limit is part of the route's contract, so it is in the update's filter, as the
  // service has it. No re-check against a concurrent delete of the device: a round trip fewer.
  const { matchedCount } = await accounts.updateOne(
    {
      _id: new ObjectId(request.params.id),
      $or: [{ deviceIds: id }, { [`deviceIds.${MAX_DEVICES_PER_ACCOUNT - 1}`]: { $exists: false } }],
    },
    { $addToSet: { deviceIds: id }, $set: { updatedAt: new Date() } },
  );
  return matchedCount ? device : notFound(reply);
});

app.delete<Route>('/api/accounts/:id/devices/rel/:fk', async (request, reply) => {
  const id = new ObjectId(request.params.fk);
  const { matchedCount } = await accounts.updateOne(
    { _id: new ObjectId(request.params.id), deviceIds: id },
    { $pull: { deviceIds: id }, $set: { updatedAt: new Date() } },
  );
  return matchedCount ? reply.code(204).send() : notFound(reply);
});

// deleteOne, not findOneAndDelete, which crashes FerretDB 2.7's PostgreSQL backend when two run at once.
app.delete<Route>('/api/devices/:id', async (request, reply) => {
  const id = new ObjectId(request.params.id);
  if (!(await devices.deleteOne({ _id: id })).deletedCount) return notFound(reply);
  await accounts.updateMany({ deviceIds: id }, { $pull: { deviceIds: id }, $set: { updatedAt: new Date() } });
  return { count: 1 };
});

app.get<Route>('/api/devices/:id/accounts', async (request, reply) => {
  const id = new ObjectId(request.params.id);
  // One row more than the page: when it does not come, the page itself gives the total.
  const rows = await accounts.find({ deviceIds: id }).sort({ _id: 1 }).limit(101).toArray();
  const total = rows.length <= 100 ? rows.length : await accounts.countDocuments({ deviceIds: id });
  // Only an empty answer needs to know whether the device exists (404 or []).
  if (total === 0 && !(await devices.findOne({ _id: id }, { projection: { _id: 1 } }))) return notFound(reply);
  return reply.header('X-Total-Count', total).send(rows.slice(0, 100));
});

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
