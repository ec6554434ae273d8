import { AROUND_TODAY, expect, treeItem, openDashboard, test } from './fixtures';

test('a check-in made elsewhere appears on the page without a reload', async ({ page, admin }) => {
  const objective = await admin.createObjective({ title: 'Ship the mobile app', ...AROUND_TODAY });
  const keyResult = await admin.createKeyResult({
    objectiveId: objective, title: 'Beta testers', kind: 'METRIC', startValue: 0, targetValue: 400, unit: 'testers',
  });
  await admin.checkIn({ keyResultId: keyResult, value: 100 });

  await openDashboard(page, admin.token);
  const item = treeItem(page, 'Beta testers');
  await expect(item.getByText('25%', { exact: true })).toBeVisible();
  // A mark that a reload would wipe out.
  await page.evaluate(() => ((window as unknown as { stillHere: boolean }).stillHere = true));

  // Someone checks in through the API (not this page).
  await admin.checkIn({ keyResultId: keyResult, value: 300, note: 'Launch week' });

  await expect(item.getByText('75%', { exact: true })).toBeVisible();
  await expect(item.getByText('300 / 400 testers')).toBeVisible();
  await expect(item.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '75');
  expect(await page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
});
