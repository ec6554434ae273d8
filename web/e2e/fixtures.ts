// Shared test fixtures: an organization of the test's own (so tests are
// independent on one server), a GraphQL client for seeding, a console-error
// guard, and a screenshot at the end of every test.
import { test as base, expect, type Page } from '@playwright/test';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintToken, origin } from './env';

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(here, 'screenshots');

/** A GraphQL client with one user's token. */
export class Api {
  constructor(
    readonly token: string,
    /** The organization's slug (the token's `org` claim). */
    readonly org: string,
  ) {}

  /** Another person of the same organization, provisioned by a first request. */
  async colleague(name: string, email: string, role: 'admin' | 'member' = 'member'): Promise<Api> {
    const other = new Api(mintToken({ org: this.org, email, name, role }), this.org);
    await other.gql('{ me { id } }');
    return other;
  }

  /** Runs an operation; throws with the server's errors if there are any. */
  async gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const response = await fetch(`${origin()}/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors?.length) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
    return body.data as T;
  }

  async createObjective(input: Record<string, unknown>): Promise<string> {
    const data = await this.gql(`mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }`, { input });
    return data.createObjective.id;
  }

  async createKeyResult(input: Record<string, unknown>): Promise<string> {
    const data = await this.gql(`mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }`, { input });
    return data.createKeyResult.id;
  }

  async checkIn(input: Record<string, unknown>): Promise<void> {
    await this.gql(`mutation($input: CheckInInput!) { checkIn(input: $input) { id } }`, { input });
  }

  async createConnection(input: Record<string, unknown>): Promise<string> {
    const data = await this.gql(`mutation($input: CreateConnectionInput!) { createConnection(input: $input) { id } }`, { input });
    return data.createConnection.id;
  }

  async linkDataSource(input: Record<string, unknown>): Promise<string> {
    const data = await this.gql(`mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id } }`, { input });
    return data.linkDataSource.id;
  }
}

/** YYYY-MM-DD, `days` from today (UTC, the default organization time zone). */
export function day(days: number): string {
  return new Date(Date.now() + days * 86400_000).toISOString().slice(0, 10);
}

/** A period of 200 days centred on today: expected progress is about 50%. */
export const AROUND_TODAY = { periodStart: day(-100), periodEnd: day(99) };

/** Opens the dashboard signed in through the URL fragment. */
export async function openDashboard(page: Page, token: string): Promise<void> {
  await page.goto(`${origin()}/#token=${encodeURIComponent(token)}`);
  await expect(page.getByRole('status').filter({ hasText: 'Live' })).toBeVisible();
}

/** An objective or key result in the tree, by its title. */
export function treeItem(page: Page, title: string) {
  return page.getByRole('listitem', { name: title, exact: true });
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);
}

/** Saves a copy of the test's last screenshot for the README when asked to (UPDATE_README_SCREENSHOTS=1). */
export function keepForReadme(page: Page, name: 'dashboard' | 'graphiql'): Promise<void> {
  return page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), animations: 'disabled' }).then(() => {
    if (process.env.UPDATE_README_SCREENSHOTS) {
      mkdirSync(join(here, '..', 'screenshots'), { recursive: true });
      copyFileSync(join(SCREENSHOTS, `${name}.png`), join(here, '..', 'screenshots', `${name}.png`));
    }
  });
}

interface Fixtures {
  /** An admin of a fresh organization, for this test only. */
  admin: Api;
  /** Errors the page logged; the test fails if any remain at the end. */
  consoleErrors: string[];
}

export const test = base.extend<Fixtures>({
  admin: async ({}, use, testInfo) => {
    const org = `e2e-${slug(testInfo.title).slice(0, 40)}-${Math.random().toString(36).slice(2, 8)}`;
    await use(new Api(mintToken({ org, email: 'ada@example.com', name: 'Ada Admin', role: 'admin' }), org));
  },
  consoleErrors: [
    async ({ page }, use, testInfo) => {
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      page.on('pageerror', (error) => errors.push(error.message));
      await use(errors);
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, `${slug(testInfo.title)}.png`), fullPage: true, animations: 'disabled' });
      expect(errors, 'errors in the browser console').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
