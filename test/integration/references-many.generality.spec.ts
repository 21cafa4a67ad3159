import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { NotFoundException } from '@nestjs/common';
import { getModelToken } from '@nestjs/mongoose';
import { Test, type TestingModule } from '@nestjs/testing';
import { type Model, Types } from 'mongoose';
import { type ParsedFilter } from '../../src/common/filter/filter.types.js';
import { AppConfigModule } from '../../src/config/config.module.js';
import { DatabaseModule } from '../../src/database/database.module.js';
import { RelationRuleError } from '../../src/relations/relation-rule.error.js';
import { scanRelation } from '../../src/relations/references-many.integrity.js';
import { type ReferencesMany } from '../../src/relations/references-many.js';
import { eventually } from '../support/eventually.js';
import { Playlist, type PlaylistDoc, PlaylistsModule, PlaylistTracks, Track, type TrackDoc } from '../support/playlists.js';

/**
 * The relation is generic: a second pair of models (test/support/playlists.ts, Playlists
 * referencing many Tracks by `_id` or `slug`, at most 4) registered with
 * ReferencesManyModule.register gets every behaviour Accounts → Devices has, with no code of
 * its own: link, idempotence, the limit, unlink, replace, link-many, deletion cleanup on every
 * delete path, include, paging, count and the integrity scan.
 */

const SLUGS = ['one', 'two', 'three', 'four', 'five', 'six'] as const;
type Slug = (typeof SLUGS)[number];
const MAX = 4;

const filter = (parts: Partial<ParsedFilter> = {}): ParsedFilter => ({ where: {}, skip: 0, include: [], ...parts });

async function rejection(promise: Promise<unknown>): Promise<{ status: number; problems?: readonly unknown[] }> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (error instanceof RelationRuleError) return { status: error.getStatus(), problems: error.problems };
  if (error instanceof NotFoundException) return { status: 404 };
  throw new Error(`expected a relation error, got ${String(error)}`);
}

describe('A second referencesMany relation: Playlist.trackIds → Track (alternate key slug)', () => {
  let moduleRef: TestingModule;
  let relation: ReferencesMany<PlaylistDoc, TrackDoc>;
  let tracks: Model<Track>;
  let playlists: Model<Playlist>;
  let track: Record<Slug, Types.ObjectId>;

  beforeAll(async () => {
    // The service's configuration and database module, and the playlists' module: nothing of accounts or devices.
    moduleRef = await Test.createTestingModule({ imports: [AppConfigModule, DatabaseModule, PlaylistsModule] }).compile();
    moduleRef.useLogger(['error', 'warn']);
    await moduleRef.init();
    relation = moduleRef.get(PlaylistTracks).relation;
    tracks = moduleRef.get(getModelToken(Track.name));
    playlists = moduleRef.get(getModelToken(Playlist.name));
  });
  afterAll(() => moduleRef.close());
  beforeEach(async () => {
    await Promise.all([tracks.collection.deleteMany({}), playlists.collection.deleteMany({})]);
    const created = await tracks.create(SLUGS.map((slug) => ({ slug, title: `Track ${slug}` })));
    track = Object.fromEntries(created.map((document) => [document.slug, document._id])) as Record<Slug, Types.ObjectId>;
  });

  const key = (value: string) => relation.keys.parse(value)!;
  const playlist = async (name: string, slugs: Slug[] = []) =>
    (await playlists.create({ name, trackIds: slugs.map((slug) => track[slug]) }))._id;
  /** A playlist's tracks as slugs, in stored order, straight from the collection. */
  const slugsOf = async (id: Types.ObjectId): Promise<string[]> => {
    const bySlug = new Map(Object.entries(track).map(([slug, objectId]) => [objectId.toHexString(), slug]));
    const stored = await playlists.collection.findOne({ _id: id });
    return (stored!.trackIds as Types.ObjectId[]).map((ref) => bySlug.get(ref.toHexString()) ?? `dangling:${ref}`);
  };

  it('links by ObjectId and by slug, keeps insertion order, and linking twice keeps one', async () => {
    const mix = await playlist('mix');
    expect(await relation.link(mix, key(track.three.toHexString()))).toMatchObject({ slug: 'three', title: 'Track three' });
    expect(await relation.link(mix, key('one'))).toMatchObject({ _id: track.one });
    await relation.link(mix, key('three'));
    await relation.link(mix, key(track.one.toHexString()));
    expect(await slugsOf(mix)).toEqual(['three', 'one']);
    expect(await rejection(relation.link(mix, key('ghost')))).toEqual({ status: 404 });
    expect(await rejection(relation.link(mix, key(new Types.ObjectId().toHexString())))).toEqual({ status: 404 });
    expect(await slugsOf(mix)).toEqual(['three', 'one']);
  });

  it(`refuses to go past maxSize (${MAX}) with 422 too_many_tracks; link-many is all or nothing`, async () => {
    const full = await playlist('full');
    await relation.linkMany(full, ['one', track.two.toHexString(), 'three']);
    await relation.link(full, key('four'));
    const tooMany = { status: 422, problems: [{ code: 'too_many_tracks', reason: `a playlist references at most ${MAX} tracks` }] };
    expect(await rejection(relation.link(full, key('five')))).toEqual(tooMany);
    expect(await rejection(relation.linkMany(full, ['five', 'six']))).toEqual(tooMany);
    expect(await slugsOf(full)).toEqual(['one', 'two', 'three', 'four']);

    const other = await playlist('other', ['six']);
    expect(await rejection(relation.linkMany(other, ['one', 'ghost', 'one']))).toEqual({
      status: 422,
      problems: [
        { index: 1, code: 'unknown_track', reason: 'no track ghost' },
        { index: 2, code: 'duplicate_track', reason: 'track one is listed more than once' },
      ],
    });
    expect(await rejection(relation.linkMany(other, ['Not A Slug']))).toMatchObject({
      status: 400,
      problems: [{ index: 0, code: 'invalid_track_id' }],
    });
    expect(await slugsOf(other)).toEqual(['six']);
  });

  it('unlinks by slug or ObjectId (404 unless linked) and keeps the track; replace sets the whole list in order', async () => {
    const list = await playlist('list', ['one', 'two', 'three']);
    await relation.unlink(list, key('two'));
    await relation.unlink(list, key(track.one.toHexString()));
    expect(await rejection(relation.unlink(list, key('two')))).toEqual({ status: 404 });
    expect(await slugsOf(list)).toEqual(['three']);
    expect(await tracks.exists({ slug: 'two' })).not.toBeNull();
    expect(await relation.assertLinked(list, key('three'))).toEqual(track.three);

    const replaced = await relation.replace(list, ['five', track.two.toHexString(), 'one']);
    expect(replaced.trackIds).toEqual([track.five, track.two, track.one]);
    expect(await slugsOf(list)).toEqual(['five', 'two', 'one']);
  });

  it.each<[string, (tracks: Model<Track>, id: Types.ObjectId) => Promise<unknown>]>([
    ['findOneAndDelete(filter)', (model) => model.findOneAndDelete({ slug: 'two' }).exec()],
    ['findByIdAndDelete(id)', (model, id) => model.findByIdAndDelete(id).exec()],
    ['deleteOne(filter)', (model) => model.deleteOne({ slug: 'two' }).exec()],
    ['document.deleteOne()', async (model) => (await model.findOne({ slug: 'two' }).orFail().exec()).deleteOne()],
    ['deleteMany(filter)', (model) => model.deleteMany({ slug: { $in: ['two'] } }).exec()],
  ])('Track.%s pulls the track from every playlist, keeping the others in order', async (_case, remove) => {
    const a = await playlist('a', ['one', 'two', 'three']);
    const b = await playlist('b', ['two', 'four']);
    const c = await playlist('c', ['five']);
    await remove(tracks, track.two);
    expect({ a: await slugsOf(a), b: await slugsOf(b), c: await slugsOf(c) }).toEqual({ a: ['one', 'three'], b: ['four'], c: ['five'] });
    // Hidden at once, removed by the sweeper soon after.
    expect(await tracks.findOne({ slug: 'two' })).toBeNull();
    expect(await eventually(async () => (await tracks.collection.countDocuments({ _id: track.two })) === 0)).toBe(true);
    expect(await tracks.countDocuments()).toBe(SLUGS.length - 1);
  });

  it("deletes a playlist's tracks, and only those, pulling them from every other playlist", async () => {
    const doomed = await playlist('doomed', ['two', 'four']);
    const other = await playlist('other', ['one', 'two', 'three', 'four']);
    expect(await relation.deleteLinked(doomed)).toEqual({ count: 2 });
    expect({ doomed: await slugsOf(doomed), other: await slugsOf(other) }).toEqual({ doomed: [], other: ['one', 'three'] });
    expect((await tracks.find({}, { slug: 1 }).lean()).map((document) => document.slug).sort()).toEqual(['five', 'one', 'six', 'three']);
  });

  it('includes tracks in list order, or in the scope’s order and limit', async () => {
    const id = await playlist('included', ['three', 'one', 'four']);
    const include = (scope: ParsedFilter) => relation.including(filter({ include: [{ relation: 'tracks', scope }] }));
    const inOrder = include(filter());
    const [source] = await inOrder.answer([await playlists.findById(id, inOrder.projection).lean<PlaylistDoc>().orFail()]);
    const included = (source as PlaylistDoc & { tracks: TrackDoc[] }).tracks;
    expect(included.map((document) => document.slug)).toEqual(['three', 'one', 'four']);
    expect(source.trackIds).toEqual([track.three, track.one, track.four]);

    const scoped = include(filter({ order: { slug: 1 }, limit: 2, fields: { slug: 1 } }));
    const [scopedSource] = await scoped.answer([await playlists.findById(id, scoped.projection).lean<PlaylistDoc>().orFail()]);
    expect((scopedSource as PlaylistDoc & { tracks: TrackDoc[] }).tracks).toEqual([
      { _id: track.four, slug: 'four' },
      { _id: track.one, slug: 'one' },
    ]);
  });

  it('pages and counts within the playlist only, in list order', async () => {
    const id = await playlist('paged', ['five', 'two', 'six', 'one']);
    await playlist('elsewhere', ['three', 'four']);
    const page = await relation.page(id, filter({ skip: 1, limit: 2 }));
    expect({ slugs: page.items.map((document) => document.slug), total: page.total }).toEqual({ slugs: ['two', 'six'], total: 4 });
    expect(await relation.count(id, {})).toBe(4);
    expect(await relation.count(id, { slug: { $in: ['one', 'three', 'six'] } })).toBe(2);
    expect(await rejection(relation.count(new Types.ObjectId(), {}))).toEqual({ status: 404 });
  });

  it('leaves nothing for the integrity scan to find after links and deletions, which finds an id written around the relation', async () => {
    const a = await playlist('a');
    const b = await playlist('b', ['six']);
    await relation.linkMany(a, ['one', 'two', 'three']);
    await relation.link(b, key('two'));
    await tracks.deleteOne({ slug: 'two' }).exec();
    await tracks.deleteMany({ slug: { $in: ['six', 'five'] } }).exec();
    expect(await scanRelation(relation, { fix: false })).toEqual({
      sourcesScanned: 2,
      targetsScanned: SLUGS.length - 3,
      limit: MAX,
      damaged: [],
    });

    // An id of no track, written around the relation: the scan of this relation sees it.
    const ghost = new Types.ObjectId();
    await playlists.updateOne({ _id: b }, { $push: { trackIds: ghost } }).exec();
    expect(await scanRelation(relation, { fix: true })).toMatchObject({
      damaged: [{ sourceId: b.toHexString(), dangling: [ghost.toHexString()], duplicates: [], overLimit: [], repaired: true }],
    });
    expect(await scanRelation(relation, { fix: false })).toMatchObject({ damaged: [] });
    expect({ a: await slugsOf(a), b: await slugsOf(b) }).toEqual({ a: ['one', 'three'], b: [] });
  });
});
