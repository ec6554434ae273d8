import { AROUND_TODAY, expect, treeItem, openDashboard, test, type Api } from './fixtures';

const LEADS_SQL = 'SELECT SUM(n) FROM crm.leads';

async function seedKeyResult(admin: Api, title: string): Promise<string> {
  const objective = await admin.createObjective({ title: 'Fill the funnel', ...AROUND_TODAY });
  return admin.createKeyResult({ objectiveId: objective, title, kind: 'METRIC', startValue: 0, targetValue: 200, unit: 'leads' });
}

test('a key result linked to a BigQuery query carries the BigQuery mark and refreshes', async ({ page, admin }) => {
  const keyResult = await seedKeyResult(admin, 'Converted leads');
  const connectionId = await admin.createConnection({ name: 'Demo', projectId: 'demo-project' });
  await admin.linkDataSource({ keyResultId: keyResult, connectionId, sql: LEADS_SQL });

  await openDashboard(page, admin.token);
  const item = treeItem(page, 'Converted leads');
  await expect(item.getByRole('img', { name: 'BigQuery' }).first()).toBeVisible();
  await expect(item.getByText('120 / 200 leads')).toBeVisible();
  await expect(item.getByText('60%', { exact: true })).toBeVisible();
  await expect(item.getByText(/Synced/)).toBeVisible();
  await expect(item.getByText('OK', { exact: true })).toBeVisible();

  await item.getByRole('button', { name: 'Refresh' }).click();
  await expect(item.getByRole('button', { name: 'Refresh' })).toBeEnabled();
  await expect(item.getByRole('alert')).toHaveCount(0);

  // The detail view shows the chart and the sync runs.
  await page.getByRole('button', { name: 'Converted leads', exact: true }).click();
  const detail = page.getByRole('dialog', { name: 'Converted leads', exact: true });
  await expect(detail.getByRole('heading', { name: 'Progress over time' })).toBeVisible();
  await expect(detail.getByRole('img', { name: /Chart of value and progress/ })).toBeVisible();
  await expect(detail.getByRole('heading', { name: 'Sync runs' })).toBeVisible();
  await expect(detail.getByRole('cell', { name: 'ok' }).first()).toBeVisible();
});

test('the link dialog shows the server’s refusal next to the SQL', async ({ page, admin }) => {
  await seedKeyResult(admin, 'Marketing qualified leads');
  await admin.createConnection({ name: 'Demo', projectId: 'demo-project' });

  await openDashboard(page, admin.token);
  await page.getByRole('button', { name: 'Marketing qualified leads', exact: true }).click();
  await page.getByRole('dialog', { name: 'Marketing qualified leads', exact: true }).getByRole('button', { name: 'Link query' }).click();

  const dialog = page.getByRole('dialog', { name: /Link a BigQuery query/ });
  // With one connection the server picks it: "Automatic" is preselected.
  await expect(dialog.getByLabel('Connection')).toHaveValue('');
  await expect(dialog.getByLabel('Connection').locator('option:checked')).toHaveText('Automatic (Demo)');
  await dialog.getByLabel('SQL query').fill('DELETE FROM crm.leads WHERE true');
  await dialog.getByRole('button', { name: 'Link query' }).click();

  const refusal = dialog.getByRole('alert');
  await expect(refusal).toContainText('QUERY_NOT_SELECT');
  await expect(dialog.getByLabel('SQL query')).toHaveAttribute('aria-invalid', 'true');
  // Nothing was linked.
  const data = await admin.gql(`{ objectives { keyResults { title dataSource { id } } } }`);
  expect(data.objectives[0].keyResults[0].dataSource).toBeNull();
});

test('Test previews the query’s value and bytes without saving', async ({ page, admin }) => {
  await seedKeyResult(admin, 'Leads from events');
  await admin.createConnection({ name: 'Demo', projectId: 'demo-project' });

  await openDashboard(page, admin.token);
  await page.getByRole('button', { name: 'Leads from events', exact: true }).click();
  await page.getByRole('dialog', { name: 'Leads from events', exact: true }).getByRole('button', { name: 'Link query' }).click();
  const dialog = page.getByRole('dialog', { name: /Link a BigQuery query/ });
  await dialog.getByLabel('SQL query').fill(LEADS_SQL);
  await dialog.getByRole('button', { name: 'Test' }).click();

  await expect(dialog.getByText(/Test result: 120/)).toBeVisible();
  await expect(dialog.getByText(/processed/)).toBeVisible();
  await expect(dialog.getByText('Nothing was saved', { exact: false })).toBeVisible();
  const data = await admin.gql(`{ objectives { keyResults { dataSource { id } } } }`);
  expect(data.objectives[0].keyResults[0].dataSource).toBeNull();

  // Linking it for real then shows the mark in the tree.
  await dialog.getByRole('button', { name: 'Link query' }).click();
  await expect(dialog).toBeHidden();
  await page.keyboard.press('Escape');
  const item = treeItem(page, 'Leads from events');
  await expect(item.getByRole('img', { name: 'BigQuery' }).first()).toBeVisible();
});

test('an admin creates, shares and tests a connection and sees the BigQuery setup steps', async ({ page, admin }) => {
  await admin.colleague('Bo Member', 'bo@example.com');
  await openDashboard(page, admin.token);
  await page.getByRole('button', { name: 'Connections' }).click();

  await page.getByLabel('Name').fill('Demo');
  await page.getByLabel('Project ID').fill('demo-project');
  await page.getByRole('button', { name: 'Create connection' }).click();
  const connection = treeItem(page, 'Demo');
  await expect(connection.getByText('demo-project')).toBeVisible();

  await connection.getByRole('button', { name: 'Test' }).click();
  await expect(connection.getByText(/^(Passed|Failed) /)).toBeVisible();

  // Shared with one colleague first, then with everyone.
  await connection.getByRole('button', { name: 'Share' }).click();
  const share = page.getByRole('dialog', { name: 'Share “Demo”', exact: true });
  await share.getByRole('checkbox', { name: /Bo Member/ }).check();
  await share.getByRole('button', { name: 'Save sharing' }).click();
  await expect(share).toBeHidden();
  await expect(connection.getByText('Bo Member')).toBeVisible();

  await connection.getByRole('button', { name: 'Share' }).click();
  await share.getByLabel('Everyone in the organization').check();
  await share.getByRole('button', { name: 'Save sharing' }).click();
  await expect(share).toBeHidden();
  await expect(connection.getByText('Everyone in the organization')).toBeVisible();

  await expect(page.getByRole('heading', { name: 'BigQuery setup' })).toBeVisible();
  await expect(page.getByText('bigquery.jobs.create', { exact: true })).toBeVisible();
});
