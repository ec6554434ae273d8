import { expect, keepForReadme, test } from './fixtures';
import { origin } from './env';

test('GraphiQL loads offline with the token from the dashboard and shows the schema docs', async ({ page, admin }) => {
  // Signed in on the dashboard first: the token is in this tab's sessionStorage.
  await page.goto(`${origin()}/#token=${admin.token}`);
  await expect(page.getByRole('status').filter({ hasText: 'Live' })).toBeVisible();

  await page.goto(`${origin()}/graphql`);
  await expect(page.getByRole('region', { name: 'Query Editor' })).toBeVisible();
  // The headers editor is pre-filled with the bearer token.
  await expect(page.getByRole('region', { name: 'Headers' })).toContainText('Bearer');

  // The schema loads: the docs explorer lists the root types.
  await page.getByRole('button', { name: /Show Documentation Explorer/ }).click();
  await expect(page.getByText('Root Types')).toBeVisible();
  await expect(page.getByText('Mutation', { exact: true })).toBeVisible();

  // A query runs.
  await page.getByRole('button', { name: /Execute query/ }).click();
  await expect(page.getByRole('region', { name: 'Result Window' })).toContainText('"objectives"');

  await keepForReadme(page, 'graphiql');
});
