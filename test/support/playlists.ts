import { Injectable, Module } from '@nestjs/common';
import { MongooseModule, Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Schema as MongooseSchema, type Types } from 'mongoose';
import { revision } from '../../src/common/schema/revision.plugin.js';
import { SCHEMA_OPTIONS } from '../../src/common/schema-options.js';
import { type ReferencesManyDefinition } from '../../src/relations/references-many.definition.js';
import { InjectRelation, ReferencesManyModule } from '../../src/relations/references-many.module.js';
import { type ReferencesMany, referencesManyTarget } from '../../src/relations/references-many.js';

/**
 * A second referencesMany relation, Playlists referencing many Tracks, declared the way
 * Accounts → Devices is: what it costs is two schemas and one registration, no relation code.
 */

/** Lower-case words joined by dashes, and never 24 hexadecimal characters, which read as an ObjectId. */
export const isSlug = (value: string) => /^[a-z0-9]+(-[a-z0-9]+)*$/.test(value) && value.length <= 64 && !/^[0-9a-f]{24}$/.test(value);

@Schema(SCHEMA_OPTIONS)
export class Track {
  _id: Types.ObjectId;

  @Prop({
    type: String,
    required: true,
    unique: true,
    validate: { validator: isSlug, message: 'slug must be lower-case words joined by dashes' },
  })
  slug: string;

  @Prop({ type: String, required: true })
  title: string;
}

export const TrackSchema = SchemaFactory.createForClass(Track);
TrackSchema.plugin(revision);
TrackSchema.plugin(referencesManyTarget);

@Schema(SCHEMA_OPTIONS)
export class Playlist {
  _id: Types.ObjectId;

  @Prop({ type: String, required: true })
  name: string;

  @Prop({ type: [{ type: MongooseSchema.Types.ObjectId, ref: Track.name }], default: [] })
  trackIds: Types.ObjectId[];
}

export const PlaylistSchema = SchemaFactory.createForClass(Playlist);
PlaylistSchema.plugin(revision);
PlaylistSchema.index({ trackIds: 1 });

export const PLAYLIST_TRACKS: ReferencesManyDefinition = {
  name: 'tracks',
  source: Playlist.name,
  target: Track.name,
  foreignKey: 'trackIds',
  alternateKey: 'slug',
  maxSize: () => 4,
};

export type PlaylistDoc = Playlist & { createdAt: Date; updatedAt: Date };
export type TrackDoc = Track & { createdAt: Date; updatedAt: Date };

/** What a service of the playlists would hold: the relation, injected by its name. */
@Injectable()
export class PlaylistTracks {
  constructor(@InjectRelation(PLAYLIST_TRACKS.name) readonly relation: ReferencesMany<PlaylistDoc, TrackDoc>) {}
}

@Module({
  imports: [
    MongooseModule.forFeature([
      { name: Track.name, schema: TrackSchema },
      { name: Playlist.name, schema: PlaylistSchema },
    ]),
    ReferencesManyModule.register(PLAYLIST_TRACKS),
  ],
  providers: [PlaylistTracks],
  exports: [PlaylistTracks],
})
export class PlaylistsModule {}
