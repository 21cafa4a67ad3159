import { Injectable } from '@nestjs/common';
import { type AccountDto } from '../accounts/dto/account.dto.js';
import { ACCOUNT_DEVICES } from '../accounts/account-devices.relation.js';
import { InjectRelation } from '../relations/references-many.module.js';
import { type ReferencesMany } from '../relations/references-many.js';
import { type RelationDamage, scanRelation } from '../relations/references-many.integrity.js';

export interface AccountDamage extends Omit<RelationDamage, 'sourceId'> {
  accountId: string;
}

export interface IntegrityReport {
  accountsScanned: number;
  devicesScanned: number;
  limit: number;
  damaged: AccountDamage[];
}

/** `npm run integrity`: the devices relation's scan (src/relations), reported in accounts and devices. */
@Injectable()
export class IntegrityService {
  constructor(@InjectRelation(ACCOUNT_DEVICES.name) private readonly devices: ReferencesMany<AccountDto>) {}

  async check(options: { fix: boolean }): Promise<IntegrityReport> {
    const report = await scanRelation(this.devices, options);
    return {
      accountsScanned: report.sourcesScanned,
      devicesScanned: report.targetsScanned,
      limit: report.limit,
      damaged: report.damaged.map(({ sourceId, ...damage }) => ({ accountId: sourceId, ...damage })),
    };
  }
}
