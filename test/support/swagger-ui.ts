import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

/** Debian's Chromium, as .ci/run installs it; never a browser downloaded by a package. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless Chromium with a profile of its own, quiet on the network beyond the page it is sent to. */
export function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
}

export interface LiveResponse {
  status: number;
  /** Whether Swagger UI found the status among the operation's documented responses. */
  documented: boolean;
  body: unknown;
}

/**
 * Swagger UI as a person uses it: expand an operation, "Try it out", type into its fields,
 * "Execute", read the response block. Every wait is bounded by the page's default timeout.
 */
export class SwaggerUi {
  constructor(readonly page: Page) {}

  /** Expands the operation (tag as Swagger UI writes it, spaces as underscores) and turns on "Try it out". */
  async tryOut(tag: string, operationId: string): Promise<Locator> {
    const operation = this.page.locator(`#operations-${tag}-${operationId}`);
    if ((await operation.locator('.opblock-body').count()) === 0) await operation.locator('.opblock-summary').click();
    const tryOut = operation.locator('button.try-out__btn:not(.cancel)');
    if ((await tryOut.count()) > 0) await tryOut.click();
    return operation;
  }

  async type(operation: Locator, param: string, value: string): Promise<void> {
    await operation.locator(`tr[data-param-name="${param}"] input[type=text]`).fill(value);
  }

  async choose(operation: Locator, param: string, value: string): Promise<void> {
    await operation.locator(`tr[data-param-name="${param}"] select`).selectOption(value);
  }

  async typeBody(operation: Locator, body: unknown): Promise<void> {
    await operation.locator('textarea.body-param__text').fill(JSON.stringify(body, null, 2));
  }

  /** Clicks "Execute" and reads the response block Swagger UI shows for it. */
  async execute(operation: Locator): Promise<LiveResponse> {
    const clear = operation.locator('button.btn-clear');
    if ((await clear.count()) > 0) await clear.click();
    await operation.locator('button.execute').click();
    const row = operation.locator('table.live-responses-table tr.response');
    await row.waitFor();
    const status = Number((await row.locator('.response-col_status').innerText()).trim().split(/\s/)[0]);
    const documented = (await row.locator('.response-undocumented').count()) === 0;
    const body = row.locator('.response-col_description .highlight-code pre');
    const text = (await body.count()) > 0 ? await body.first().innerText() : '';
    return { status, documented, body: text ? JSON.parse(text) : undefined };
  }

  /** The example Swagger UI shows for a documented status of the operation (its first, unless chosen). */
  async documentedExample(operation: Locator, status: number): Promise<unknown> {
    const row = operation.locator(`table.responses-table:not(.live-responses-table) tr.response[data-code="${status}"]`);
    return JSON.parse(await row.locator('pre.example').first().innerText());
  }

  /**
   * A picture of the operation from its title down to the response Swagger UI shows for the
   * last "Execute" (the documented responses below it left out), or of the whole page.
   */
  async screenshot(path: string, operation?: Locator): Promise<void> {
    if (!operation) return void (await this.page.screenshot({ path, timeout: 30_000 }));
    const live = operation.locator('table.live-responses-table');
    if ((await live.count()) === 0) return void (await operation.screenshot({ path, timeout: 30_000 }));
    const [top, bottom] = await Promise.all([operation.boundingBox(), live.boundingBox()]);
    // Bounding boxes are in the viewport; a full-page clip is in the page.
    const scroll = await this.page.evaluate(() => {
      const view = globalThis as unknown as { scrollX: number; scrollY: number };
      return { x: view.scrollX, y: view.scrollY };
    });
    if (!top || !bottom) throw new Error(`nothing to photograph for ${path}`);
    const clip = { x: top.x + scroll.x, y: top.y + scroll.y, width: top.width, height: bottom.y + bottom.height - top.y };
    await this.page.screenshot({ path, fullPage: true, clip, timeout: 30_000 });
  }

  /** "Authorize" with a key for one scheme (`bearer` or `api-key`), replacing any key it had. */
  async authorize(scheme: 'bearer' | 'api-key', key: string): Promise<void> {
    const container = await this.authContainer(scheme);
    const logout = container.getByRole('button', { name: 'Remove authorization' });
    if ((await logout.count()) > 0) await logout.click();
    await container.locator('input[type=text]').fill(key);
    await container.getByRole('button', { name: 'Apply credentials' }).click();
    await container.getByRole('button', { name: 'Remove authorization' }).waitFor();
    await this.closeAuthorizations();
  }

  /** "Logout" of one scheme. */
  async logout(scheme: 'bearer' | 'api-key'): Promise<void> {
    const container = await this.authContainer(scheme);
    await container.getByRole('button', { name: 'Remove authorization' }).click();
    await container.getByRole('button', { name: 'Apply credentials' }).waitFor();
    await this.closeAuthorizations();
  }

  private async authContainer(scheme: 'bearer' | 'api-key'): Promise<Locator> {
    // The page's own Authorize button, not the one inside the dialog.
    await this.page.locator('.auth-wrapper > button.authorize').click();
    const modal = this.page.locator('.modal-ux');
    await modal.waitFor();
    return modal.locator('.auth-container').filter({ has: this.page.locator('h4 code', { hasText: new RegExp(`^${scheme}$`) }) });
  }

  private async closeAuthorizations(): Promise<void> {
    await this.page.locator('.modal-ux button.close-modal').click();
    await this.page.locator('.modal-ux').waitFor({ state: 'detached' });
  }
}
