import { AROUND_TODAY, expect, openDashboard, test } from './fixtures';
import { origin } from './env';

test('no request leaves the server’s origin', async ({ page, admin }) => {
  const urls: string[] = [];
  page.on('request', (request) => urls.push(request.url()));
  page.on('websocket', (socket) => urls.push(socket.url()));

  const objective = await admin.createObjective({ title: 'Stay offline', ...AROUND_TODAY });
  const keyResult = await admin.createKeyResult({ objectiveId: objective, title: 'Requests kept home', kind: 'METRIC', startValue: 0, targetValue: 10 });
  await admin.checkIn({ keyResultId: keyResult, value: 5 });

  // Every page and view: the dashboard, a detail with its chart, GraphiQL with its docs.
  await openDashboard(page, admin.token);
  await page.getByRole('button', { name: 'Requests kept home', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Progress over time' })).toBeVisible();
  await page.keyboard.press('Escape');
  await page.getByRole('button', { name: 'Connections' }).click();
  await expect(page.getByRole('heading', { name: 'BigQuery setup' })).toBeVisible();
  await page.goto(`${origin()}/graphql`);
  await page.getByRole('button', { name: /Show Documentation Explorer/ }).click();
  await expect(page.getByText('Root Types')).toBeVisible();
  await page.waitForLoadState('networkidle');

  const host = new URL(origin()).host;
  const allowed = [`http://${host}/`, `ws://${host}/`];
  // data: and blob: URLs (GraphiQL's inlined fonts and images) never leave the page.
  const offHost = urls.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:') && !allowed.some((a) => url.startsWith(a)));
  expect(urls.length).toBeGreaterThan(3);
  expect(urls.some((url) => url.startsWith(`ws://${host}/graphql`))).toBe(true);
  expect(offHost).toEqual([]);
});
