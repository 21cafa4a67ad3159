import { Inject, Injectable } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { InjectModel } from '@nestjs/mongoose';
import { type Model, type Types } from 'mongoose';
import { Account } from '../accounts/schemas/account.schema.js';
import { relationConfig } from '../config/config.module.js';
import { Device } from '../devices/schemas/device.schema.js';

export interface AccountDamage {
  accountId: string;
  /** Ids that name no device. */
  dangling: string[];
  /** Ids that appear more than once (each listed once). */
  duplicates: string[];
  /** Ids past the limit, after dangling ones and repeats are removed. */
  overLimit: string[];
  repaired: boolean;
}

export interface IntegrityReport {
  accountsScanned: number;
  devicesScanned: number;
  limit: number;
  damaged: AccountDamage[];
}

/** Attempts at a conditional repair of one account before it is reported as busy. */
const REPAIR_ATTEMPTS = 5;

/**
 * Scans every account's `deviceIds` for the invariants of DESIGN.md (no dangling id, no
 * repeat, at most the limit) and, when asked, repairs them. The service never produces such
 * damage; this is for data written around it (imports, scripts, an older service).
 */
@Injectable()
export class IntegrityService {
  constructor(
    @InjectModel(Account.name) private readonly accounts: Model<Account>,
    @InjectModel(Device.name) private readonly devices: Model<Device>,
    @Inject(relationConfig.KEY) private readonly relation: ConfigType<typeof relationConfig>,
  ) {}

  async check(options: { fix: boolean }): Promise<IntegrityReport> {
    const limit = this.relation.maxDevicesPerAccount;
    const existing = new Set<string>();
    for await (const device of this.devices.find({}, { _id: 1 }).lean().cursor()) existing.add(device._id.toHexString());

    const damaged: AccountDamage[] = [];
    let accountsScanned = 0;
    for await (const account of this.accounts.find({}, { _id: 1, deviceIds: 1 }).lean().cursor()) {
      accountsScanned += 1;
      const damage = inspect(account.deviceIds, existing, limit);
      if (!damage) continue;
      const repaired = options.fix ? await this.repair(account._id, account.deviceIds, existing, limit) : false;
      damaged.push({ accountId: account._id.toHexString(), ...damage, repaired });
    }
    return { accountsScanned, devicesScanned: existing.size, limit, damaged };
  }

  /**
   * Writes the cleaned list only if the stored list is still the one that was read (a
   * conditional update, so a concurrent link is never overwritten); re-reads and retries
   * otherwise.
   */
  private async repair(id: Types.ObjectId, read: Types.ObjectId[], existing: Set<string>, limit: number): Promise<boolean> {
    let current = read;
    for (let attempt = 0; attempt < REPAIR_ATTEMPTS; attempt += 1) {
      const cleaned = clean(current, existing).slice(0, limit);
      const result = await this.accounts.updateOne({ _id: id, deviceIds: { $eq: current } }, { $set: { deviceIds: cleaned } }).exec();
      if (result.matchedCount === 1) return true;
      const fresh = await this.accounts.findById(id, { deviceIds: 1 }).lean().exec();
      if (!fresh) return true;
      current = fresh.deviceIds;
      if (!inspect(current, existing, limit)) return true;
    }
    return false;
  }
}

/** First occurrences of existing devices, in order. */
function clean(ids: readonly Types.ObjectId[], existing: ReadonlySet<string>): Types.ObjectId[] {
  const seen = new Set<string>();
  return ids.filter((id) => {
    const hex = id.toHexString();
    if (!existing.has(hex) || seen.has(hex)) return false;
    seen.add(hex);
    return true;
  });
}

function inspect(
  ids: readonly Types.ObjectId[],
  existing: ReadonlySet<string>,
  limit: number,
): Omit<AccountDamage, 'accountId' | 'repaired'> | undefined {
  const hexes = ids.map((id) => id.toHexString());
  const dangling = [...new Set(hexes.filter((hex) => !existing.has(hex)))];
  const counts = new Map<string, number>();
  for (const hex of hexes) counts.set(hex, (counts.get(hex) ?? 0) + 1);
  const duplicates = [...counts].filter(([, count]) => count > 1).map(([hex]) => hex);
  const overLimit = clean(ids, existing)
    .slice(limit)
    .map((id) => id.toHexString());
  if (dangling.length === 0 && duplicates.length === 0 && overLimit.length === 0) return undefined;
  return { dangling, duplicates, overLimit };
}
