import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { origin } from './env';
import { AROUND_TODAY, expect, openDashboard, test } from './fixtures';

/** Runs axe on the page (or one part of it) and lists the rules broken. */
async function violations(page: Page, include?: string): Promise<string[]> {
  let builder = new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']);
  if (include) builder = builder.include(include);
  const result = await builder.analyze();
  return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

test('the login, the dashboard, its dialogs and the Connections screen pass axe’s WCAG A/AA checks', async ({ page, admin }) => {
  const objective = await admin.createObjective({ title: 'Reduce churn', ...AROUND_TODAY });
  const keyResult = await admin.createKeyResult({
    objectiveId: objective, title: 'Monthly churn', kind: 'KPI', kpiCondition: 'AT_MOST', targetValue: 3, unit: '%',
  });
  const linked = await admin.createKeyResult({
    objectiveId: objective, title: 'Accounts saved', kind: 'METRIC', startValue: 0, targetValue: 300,
  });
  await admin.checkIn({ keyResultId: keyResult, value: 2.5 });
  const connectionId = await admin.createConnection({ name: 'Demo', projectId: 'demo-project' });
  await admin.linkDataSource({ keyResultId: linked, connectionId, sql: 'SELECT SUM(n) FROM crm.leads' });

  await page.goto(origin());
  await expect(page.getByLabel('Access token')).toBeVisible();
  expect(await violations(page)).toEqual([]);

  await openDashboard(page, admin.token);
  await expect(page.getByRole('button', { name: 'Accounts saved', exact: true })).toBeVisible();
  expect(await violations(page)).toEqual([]);

  await page.getByRole('button', { name: 'Accounts saved', exact: true }).click();
  const detail = page.getByRole('dialog', { name: 'Accounts saved', exact: true });
  await expect(detail.getByRole('heading', { name: 'Sync runs' })).toBeVisible();
  expect(await violations(page, 'dialog')).toEqual([]);

  await detail.getByRole('button', { name: 'Change query' }).click();
  await expect(page.getByRole('dialog', { name: /Change the query/ })).toBeVisible();
  expect(await violations(page, 'dialog')).toEqual([]);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');

  await page.getByRole('button', { name: 'Connections' }).click();
  await expect(page.getByRole('heading', { name: 'BigQuery setup' })).toBeVisible();
  expect(await violations(page)).toEqual([]);
});
