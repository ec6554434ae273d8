import { AROUND_TODAY, day, expect, keepForReadme, openDashboard, test, treeItem } from './fixtures';
import { origin } from './env';

test('the dashboard signs in from the link fragment and shows the tree with bars, percentages and status words', async ({
  page,
  admin,
}) => {
  // A small tree: one objective whose key results are on track, behind,
  // at risk and not started (its period is half over, so 50% is expected).
  const objective = await admin.createObjective({ title: 'Grow the sales pipeline', ...AROUND_TODAY });
  const onTrack = await admin.createKeyResult({
    objectiveId: objective, title: 'Demo calls booked', kind: 'METRIC', startValue: 0, targetValue: 200, unit: 'calls',
  });
  const behind = await admin.createKeyResult({
    objectiveId: objective, title: 'Qualified leads', kind: 'METRIC', startValue: 0, targetValue: 100, unit: 'leads',
  });
  const atRisk = await admin.createKeyResult({
    objectiveId: objective, title: 'Enterprise deals closed', kind: 'METRIC', startValue: 0, targetValue: 20, unit: 'deals',
  });
  await admin.createKeyResult({
    objectiveId: objective, title: 'Partner referrals', kind: 'METRIC', startValue: 0, targetValue: 50, unit: 'referrals',
  });
  await admin.checkIn({ keyResultId: onTrack, value: 140, note: 'Webinar week' });
  await admin.checkIn({ keyResultId: behind, value: 40 });
  await admin.checkIn({ keyResultId: atRisk, value: 2 });
  const linked = await admin.createKeyResult({
    objectiveId: objective, title: 'Converted leads', kind: 'METRIC', startValue: 0, targetValue: 200, unit: 'leads',
  });
  const connectionId = await admin.createConnection({ name: 'Demo', projectId: 'demo-project' });
  await admin.linkDataSource({ keyResultId: linked, connectionId, sql: 'SELECT SUM(n) FROM crm.leads' });
  await admin.gql(`mutation { updateOrganization(input: { name: "Acme" }) { id } }`);
  const child = await admin.createObjective({ title: 'Launch the partner programme', parentId: objective, ...AROUND_TODAY });
  const partners = await admin.createKeyResult({
    objectiveId: child, title: 'Partners signed', kind: 'METRIC', startValue: 0, targetValue: 10, unit: 'partners',
  });
  await admin.checkIn({ keyResultId: partners, value: 6 });

  // I open the link the server printed, with my token in the fragment.
  await openDashboard(page, admin.token);

  // The token is gone from the address bar.
  expect(page.url()).toBe(`${origin()}/`);

  // Each key result has a bar, its percentage and its status in words.
  const item = (title: string) => treeItem(page, title);
  await expect(item('Demo calls booked').getByRole('progressbar', { name: 'Progress of Demo calls booked' })).toHaveAttribute(
    'aria-valuenow',
    '70',
  );
  await expect(item('Demo calls booked').getByText('70%', { exact: true })).toBeVisible();
  await expect(item('Demo calls booked').getByText('On track')).toBeVisible();
  await expect(item('Demo calls booked').getByText('140 / 200 calls')).toBeVisible();
  await expect(item('Qualified leads').getByText('40%', { exact: true })).toBeVisible();
  await expect(item('Qualified leads').getByText('Behind')).toBeVisible();
  await expect(item('Enterprise deals closed').getByText('10%', { exact: true })).toBeVisible();
  await expect(item('Enterprise deals closed').getByText('At risk')).toBeVisible();
  await expect(item('Partner referrals').getByText('Not started')).toBeVisible();
  await expect(item('Partners signed').getByText('60%', { exact: true })).toBeVisible();
  await expect(item('Converted leads').getByRole('img', { name: 'BigQuery' }).first()).toBeVisible();

  // The objectives roll up and show their owner.
  await expect(page.getByRole('progressbar', { name: 'Progress of Grow the sales pipeline' })).toBeVisible();
  await expect(page.getByText('Ada Admin').first()).toBeVisible();

  await keepForReadme(page, 'dashboard');
});

test('a refused token brings back the access token field with a message', async ({ page, admin }) => {
  await page.goto(`${origin()}/#token=not-a-real-token`);
  const field = page.getByLabel('Access token');
  await expect(field).toBeVisible();
  await expect(page.getByRole('alert')).toContainText('did not work');
  expect(page.url()).toBe(`${origin()}/`);

  // Pasting a good token signs in.
  await field.fill(admin.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Live' })).toBeVisible();
  await expect(page.getByText('No objectives in this period yet.')).toBeVisible();
});

test('an objective and a key result can be created and checked in from the dashboard', async ({ page, admin }) => {
  await openDashboard(page, admin.token);

  await page.getByRole('button', { name: 'New objective' }).click();
  const objectiveDialog = page.getByRole('dialog', { name: 'New objective', exact: true });
  await objectiveDialog.getByLabel('Title', { exact: true }).fill('Delight our customers');
  await objectiveDialog.getByRole('button', { name: 'Create objective' }).click();
  await expect(objectiveDialog).toBeHidden();

  await page.getByRole('button', { name: 'Delight our customers', exact: true }).click();
  const detail = page.getByRole('dialog', { name: 'Delight our customers', exact: true });
  await detail.getByRole('button', { name: 'Add key result' }).click();
  const krDialog = page.getByRole('dialog', { name: /New key result/ });
  await krDialog.getByLabel('Title', { exact: true }).fill('NPS');
  await krDialog.getByLabel('Start value', { exact: true }).fill('20');
  await krDialog.getByLabel('Target value', { exact: true }).fill('60');
  await krDialog.getByLabel('Unit', { exact: true }).fill('points');
  await krDialog.getByRole('button', { name: 'Create key result' }).click();
  await expect(krDialog).toBeHidden();
  await page.keyboard.press('Escape');
  await expect(detail).toBeHidden();

  await page.getByRole('button', { name: 'NPS', exact: true }).click();
  const krDetail = page.getByRole('dialog', { name: 'NPS', exact: true });
  await krDetail.getByRole('button', { name: 'Check in' }).click();
  const checkIn = page.getByRole('dialog', { name: 'Check in: NPS', exact: true });
  await checkIn.getByLabel('Value').fill('40');
  await checkIn.getByLabel('Note').fill('Survey of March');
  await checkIn.getByRole('button', { name: 'Check in' }).click();
  await expect(checkIn).toBeHidden();
  await expect(krDetail.getByRole('progressbar', { name: 'Progress of NPS' })).toHaveAttribute('aria-valuenow', '50');
  await expect(krDetail.getByRole('heading', { name: 'Progress over time' })).toBeVisible();
  await expect(krDetail.getByRole('img', { name: /Chart of value and progress/ })).toBeVisible();
  await krDetail.getByText(/History \(1 point/).click();
  await expect(krDetail.getByRole('cell', { name: 'Survey of March' })).toBeVisible();
});

test('the tree works from the keyboard and the period selector shows other quarters', async ({ page, admin }) => {
  // Three weeks around today: never within two quarters of another quarter.
  const objective = await admin.createObjective({ title: 'Hire the platform team', periodStart: day(-10), periodEnd: day(10) });
  await admin.createKeyResult({ objectiveId: objective, title: 'Engineers hired', kind: 'METRIC', startValue: 0, targetValue: 5 });
  await openDashboard(page, admin.token);

  // I tab to the objective's title and open it with Enter.
  const title = page.getByRole('button', { name: 'Hire the platform team', exact: true });
  await title.focus();
  await page.keyboard.press('Enter');
  const detail = page.getByRole('dialog', { name: 'Hire the platform team', exact: true });
  await expect(detail).toBeVisible();
  await expect(detail.getByRole('button', { name: 'Add key result' })).toBeVisible();
  // Escape closes it and gives focus back to the title.
  await page.keyboard.press('Escape');
  await expect(detail).toBeHidden();
  await expect(title).toBeFocused();

  // The key results fold away and come back.
  await page.getByRole('button', { name: 'Collapse Hire the platform team' }).press('Enter');
  await expect(page.getByRole('button', { name: 'Engineers hired', exact: true })).toBeHidden();
  await page.getByRole('button', { name: 'Expand Hire the platform team' }).press('Enter');
  await expect(page.getByRole('button', { name: 'Engineers hired', exact: true })).toBeVisible();

  // The quarter before last holds none of this period's objectives.
  const period = page.getByLabel('Period');
  const options = await period.locator('option').allTextContents();
  expect(options[0]).toBe('Current');
  expect(options).toHaveLength(6);
  await period.selectOption({ index: 1 });
  await expect(page.getByText('No objectives in this period yet.')).toBeVisible();
  await period.selectOption({ label: 'Current' });
  await expect(title).toBeVisible();
});
