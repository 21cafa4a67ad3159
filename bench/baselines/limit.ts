/**
 * The limit: bare Fastify and the raw driver running limit-queries.ts, with no validation,
 * no logging and no framework between the route and the query. Ids are taken as ObjectIds.
 * Env: MONGODB_URI, PORT.
 */
import Fastify, { type FastifyReply } from 'fastify';
import { MongoClient, ObjectId } from 'mongodb';
import { limitQueries } from './limit-queries.js';

const client = await new MongoClient(process.env.MONGODB_URI!).connect();
const queries = limitQueries(client.db());
const app = Fastify();
const notFound = (reply: FastifyReply) => reply.code(404).send({ statusCode: 404, error: 'Not Found' });

type Ids = { Params: { id: string; fk: string } };
type Filter = { Querystring: { filter?: string; include?: string } };

app.get<Ids & Filter>('/api/accounts/:id', async (request, reply) => {
  return (await queries.account(new ObjectId(request.params.id), request.query.include === 'devices')) ?? notFound(reply);
});
app.get<Ids & Filter>('/api/accounts/:id/devices', async (request, reply) => {
  const { skip = 0, limit = 100 } = JSON.parse(request.query.filter ?? '{}') as { skip?: number; limit?: number };
  const page = await queries.devicePage(new ObjectId(request.params.id), skip, limit);
  return page ? reply.header('X-Total-Count', page.total).send(page.items) : notFound(reply);
});
app.put<Ids>('/api/accounts/:id/devices/rel/:fk', async (request, reply) => {
  return (await queries.link(new ObjectId(request.params.id), new ObjectId(request.params.fk))) ?? notFound(reply);
});
app.delete<Ids>('/api/accounts/:id/devices/rel/:fk', async (request, reply) => {
  return (await queries.unlink(new ObjectId(request.params.id), new ObjectId(request.params.fk)))
    ? reply.code(204).send()
    : notFound(reply);
});
app.delete<Ids>('/api/devices/:id', async (request, reply) => {
  return (await queries.deleteDevice(new ObjectId(request.params.id))) ? { count: 1 } : notFound(reply);
});
app.get<Ids>('/api/devices/:id/accounts', async (request, reply) => {
  const page = await queries.accountsOf(new ObjectId(request.params.id));
  return page ? reply.header('X-Total-Count', page.total).send(page.items) : notFound(reply);
});

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
