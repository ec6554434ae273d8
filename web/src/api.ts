// GraphQL over HTTP: `POST /graphql` on this origin with the bearer token,
// plus the types and operations the dashboard uses (see schema.graphql).

export type Status = 'ON_TRACK' | 'BEHIND' | 'AT_RISK' | 'NOT_STARTED';
export type Role = 'ADMIN' | 'MEMBER';
export type DataSourceState = 'PENDING' | 'OK' | 'ERROR' | 'PAUSED';
export type ProgressMode = 'ROLL_UP' | 'DATA_SOURCE' | 'MANUAL';
export type KeyResultKind = 'METRIC' | 'KPI';
export type KpiCondition = 'AT_LEAST' | 'AT_MOST';

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
}

export interface Organization {
  id: string;
  name: string;
  timeZone: string;
}

export interface DataSourceSummary {
  id: string;
  state: DataSourceState;
  sql: string;
  syncIntervalSeconds: number;
  lastValue: number | null;
  lastSyncedAt: string | null;
  nextSyncAt: string;
  lastError: { code: string; message: string; at: string } | null;
  connection: { id: string; name: string } | null;
}

export interface KeyResult {
  id: string;
  title: string;
  kind: KeyResultKind;
  kpiCondition: KpiCondition | null;
  startValue: number | null;
  targetValue: number;
  currentValue: number | null;
  unit: string;
  weight: number;
  progress: number | null;
  expectedProgress: number;
  status: Status;
  dataSource: DataSourceSummary | null;
}

export interface Objective {
  id: string;
  title: string;
  description: string;
  periodStart: string;
  periodEnd: string;
  progressMode: ProgressMode;
  startValue: number | null;
  targetValue: number | null;
  currentValue: number | null;
  weight: number;
  progress: number | null;
  expectedProgress: number;
  status: Status;
  owner: { id: string; name: string } | null;
  parent: { id: string } | null;
  keyResults: KeyResult[];
  dataSource: DataSourceSummary | null;
}

export interface HistoryPoint {
  at: string;
  value: number | null;
  progress: number | null;
  expectedProgress: number;
  status: Status;
  source: string;
  note: string | null;
}

export interface SyncRun {
  startedAt: string;
  outcome: 'OK' | 'UNCHANGED' | 'ERROR';
  value: number | null;
  bytesProcessed: number | null;
  durationMs: number;
  jobId: string | null;
  error: { code: string; message: string } | null;
}

export interface Connection {
  id: string;
  name: string;
  projectId: string;
  location: string | null;
  canUse: boolean;
  canManage: boolean;
  sharedWithEveryone: boolean;
  sharedWith: { id: string; name: string; email: string }[];
  owner: { id: string; name: string } | null;
  lastTest: ConnectionTest | null;
}

export interface ConnectionTest {
  ok: boolean;
  message: string;
  checkedAt: string;
}

/** A GraphQL error as the server sent it (`extensions.code` etc.). */
export class ApiError extends Error {
  constructor(
    message: string,
    /** `extensions.code`, e.g. `QUERY_NOT_SELECT`; `NETWORK` when no answer came; "" when the server gave none. */
    readonly code: string,
    /** `extensions.field` for `BAD_USER_INPUT`. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** "CODE: message", the way the dashboard shows a refusal inline. */
  get display(): string {
    const shown = this.code && this.code !== 'NETWORK' && !this.code.startsWith('HTTP_');
    return shown ? `${this.code}: ${this.message}` : this.message;
  }
}

interface GraphQLErrorJson {
  message: string;
  extensions?: { code?: string; field?: string };
}

let currentToken: string | null = null;
let onUnauthenticated: (message: string) => void = () => {};

/** Sets the token sent with every request, and what to do when it is refused. */
export function configureApi(token: string | null, unauthenticated: (message: string) => void): void {
  currentToken = token;
  onUnauthenticated = unauthenticated;
}

/**
 * Runs one operation. Resolves with `data`; rejects with the first error as an
 * ApiError. An `UNAUTHENTICATED` answer (or HTTP 401) also sends the user back
 * to the login field.
 */
export async function gql<T>(query: string, variables?: Record<string, unknown>, token = currentToken): Promise<T> {
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The server could not be reached.', 'NETWORK');
  }
  let body: { data?: T | null; errors?: GraphQLErrorJson[] } | null = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const first = body?.errors?.[0];
  if (response.status === 401 || first?.extensions?.code === 'UNAUTHENTICATED') {
    const error = new ApiError(first?.message ?? 'The access token was refused.', 'UNAUTHENTICATED');
    onUnauthenticated(error.message);
    throw error;
  }
  if (first) {
    throw new ApiError(first.message, first.extensions?.code ?? '', first.extensions?.field);
  }
  if (!response.ok || !body?.data) {
    throw new ApiError(`The server answered HTTP ${response.status}.`, 'HTTP_' + response.status);
  }
  return body.data;
}

/** The text to show for any error thrown by gql (or anything else). */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.display;
  if (error instanceof Error) return error.message;
  return String(error);
}

// ---------------------------------------------------------------------------
// Operations

const DATA_SOURCE_FIELDS = `
  id state sql syncIntervalSeconds lastValue lastSyncedAt nextSyncAt
  lastError { code message at }
  connection { id name }
`;

const KEY_RESULT_FIELDS = `
  id title kind kpiCondition startValue targetValue currentValue unit weight
  progress expectedProgress status
  dataSource { ${DATA_SOURCE_FIELDS} }
`;

const OBJECTIVE_FIELDS = `
  id title description periodStart periodEnd progressMode startValue targetValue
  currentValue weight progress expectedProgress status
  owner { id name }
  parent { id }
  dataSource { ${DATA_SOURCE_FIELDS} }
  keyResults { ${KEY_RESULT_FIELDS} }
`;

export const ME = `query Me { me { id email name role } organization { id name timeZone } }`;

export async function fetchMe(token: string): Promise<{ me: User; organization: Organization }> {
  return gql(ME, undefined, token);
}

/** Every objective whose period overlaps [from, to] (both inclusive). */
export async function fetchObjectives(periodFrom: string, periodTo: string): Promise<Objective[]> {
  const data = await gql<{ objectives: Objective[] }>(
    `query Tree($periodFrom: NaiveDate, $periodTo: NaiveDate) {
      objectives(periodFrom: $periodFrom, periodTo: $periodTo) { ${OBJECTIVE_FIELDS} }
    }`,
    { periodFrom, periodTo },
  );
  return data.objectives;
}

export interface Detail {
  id: string;
  title: string;
  periodStart: string;
  periodEnd: string;
  history: HistoryPoint[];
  dataSource: (DataSourceSummary & { syncRuns: SyncRun[] }) | null;
}

const DETAIL_FIELDS = `
  history { at value progress expectedProgress status source note }
  dataSource {
    ${DATA_SOURCE_FIELDS}
    syncRuns(limit: 20) { startedAt outcome value bytesProcessed durationMs jobId error { code message } }
  }
`;

export async function fetchObjectiveDetail(id: string): Promise<Detail | null> {
  const data = await gql<{ objective: Detail | null }>(
    `query ObjectiveDetail($id: ID!) { objective(id: $id) { id title periodStart periodEnd ${DETAIL_FIELDS} } }`,
    { id },
  );
  return data.objective;
}

export async function fetchKeyResultDetail(id: string): Promise<Detail | null> {
  const data = await gql<{
    keyResult: (Omit<Detail, 'periodStart' | 'periodEnd'> & { objective: { periodStart: string; periodEnd: string } }) | null;
  }>(
    `query KeyResultDetail($id: ID!) {
      keyResult(id: $id) { id title objective { periodStart periodEnd } ${DETAIL_FIELDS} }
    }`,
    { id },
  );
  const kr = data.keyResult;
  if (!kr) return null;
  return { ...kr, periodStart: kr.objective.periodStart, periodEnd: kr.objective.periodEnd };
}

export async function fetchUsers(): Promise<User[]> {
  const data = await gql<{ users: User[] }>(`query Users { users { id email name role } }`);
  return data.users;
}

export async function refreshDataSource(id: string): Promise<DataSourceSummary> {
  const data = await gql<{ refreshDataSource: DataSourceSummary }>(
    `mutation Refresh($id: ID!) { refreshDataSource(id: $id) { ${DATA_SOURCE_FIELDS} } }`,
    { id },
  );
  return data.refreshDataSource;
}

export interface ObjectiveInput {
  title?: string;
  description?: string;
  parentId?: string | null;
  ownerId?: string;
  periodStart?: string;
  periodEnd?: string;
  progressMode?: ProgressMode;
  startValue?: number | null;
  targetValue?: number | null;
  weight?: number;
}

export async function createObjective(input: ObjectiveInput): Promise<{ id: string }> {
  const data = await gql<{ createObjective: { id: string } }>(
    `mutation CreateObjective($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }`,
    { input },
  );
  return data.createObjective;
}

export async function updateObjective(id: string, input: ObjectiveInput): Promise<{ id: string }> {
  const data = await gql<{ updateObjective: { id: string } }>(
    `mutation UpdateObjective($id: ID!, $input: UpdateObjectiveInput!) { updateObjective(id: $id, input: $input) { id } }`,
    { id, input },
  );
  return data.updateObjective;
}

export interface KeyResultInput {
  objectiveId?: string;
  title?: string;
  kind?: KeyResultKind;
  kpiCondition?: KpiCondition | null;
  startValue?: number | null;
  targetValue?: number;
  unit?: string;
  weight?: number;
}

export async function createKeyResult(input: KeyResultInput): Promise<{ id: string }> {
  const data = await gql<{ createKeyResult: { id: string } }>(
    `mutation CreateKeyResult($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }`,
    { input },
  );
  return data.createKeyResult;
}

export async function updateKeyResult(id: string, input: KeyResultInput): Promise<{ id: string }> {
  const data = await gql<{ updateKeyResult: { id: string } }>(
    `mutation UpdateKeyResult($id: ID!, $input: UpdateKeyResultInput!) { updateKeyResult(id: $id, input: $input) { id } }`,
    { id, input },
  );
  return data.updateKeyResult;
}

export interface CheckInInput {
  keyResultId?: string;
  objectiveId?: string;
  value: number;
  note?: string;
  pauseAutomaticUpdates: boolean;
}

export async function checkIn(input: CheckInInput): Promise<void> {
  await gql(`mutation CheckIn($input: CheckInInput!) { checkIn(input: $input) { id } }`, { input });
}

export interface LinkInput {
  keyResultId?: string;
  objectiveId?: string;
  connectionId?: string;
  sql: string;
  syncIntervalSeconds?: number;
}

export interface Preview {
  value: number;
  bytesProcessed: number | null;
  jobId: string | null;
  connection: { id: string; name: string };
}

/** Runs linkDataSource's checks and the query once, saving nothing. */
export async function previewDataSource(input: LinkInput): Promise<Preview> {
  const data = await gql<{ previewDataSource: Preview }>(
    `mutation Preview($input: LinkDataSourceInput!) {
      previewDataSource(input: $input) { value bytesProcessed jobId connection { id name } }
    }`,
    { input },
  );
  return data.previewDataSource;
}

export async function linkDataSource(input: LinkInput): Promise<DataSourceSummary> {
  const data = await gql<{ linkDataSource: DataSourceSummary }>(
    `mutation Link($input: LinkDataSourceInput!) { linkDataSource(input: $input) { ${DATA_SOURCE_FIELDS} } }`,
    { input },
  );
  return data.linkDataSource;
}

export interface DataSourceUpdate {
  sql?: string;
  connectionId?: string;
  syncIntervalSeconds?: number;
  paused?: boolean;
}

export async function updateDataSource(id: string, input: DataSourceUpdate): Promise<DataSourceSummary> {
  const data = await gql<{ updateDataSource: DataSourceSummary }>(
    `mutation UpdateDataSource($id: ID!, $input: UpdateDataSourceInput!) {
      updateDataSource(id: $id, input: $input) { ${DATA_SOURCE_FIELDS} }
    }`,
    { id, input },
  );
  return data.updateDataSource;
}

export async function unlinkDataSource(id: string): Promise<void> {
  await gql(`mutation Unlink($id: ID!) { unlinkDataSource(id: $id) }`, { id });
}

const CONNECTION_FIELDS = `
  id name projectId location canUse canManage sharedWithEveryone
  sharedWith { id name email }
  owner { id name }
  lastTest { ok message checkedAt }
`;

export async function fetchConnections(): Promise<Connection[]> {
  const data = await gql<{ connections: Connection[] }>(`query Connections { connections { ${CONNECTION_FIELDS} } }`);
  return data.connections;
}

export async function createConnection(input: { name: string; projectId: string; location?: string }): Promise<Connection> {
  const data = await gql<{ createConnection: Connection }>(
    `mutation CreateConnection($input: CreateConnectionInput!) { createConnection(input: $input) { ${CONNECTION_FIELDS} } }`,
    { input },
  );
  return data.createConnection;
}

export async function shareConnection(id: string, input: { everyone: boolean; userIds: string[] }): Promise<Connection> {
  const data = await gql<{ shareConnection: Connection }>(
    `mutation ShareConnection($id: ID!, $input: ShareConnectionInput!) { shareConnection(id: $id, input: $input) { ${CONNECTION_FIELDS} } }`,
    { id, input },
  );
  return data.shareConnection;
}

export async function testConnection(id: string): Promise<ConnectionTest> {
  const data = await gql<{ testConnection: ConnectionTest }>(
    `mutation TestConnection($id: ID!) { testConnection(id: $id) { ok message checkedAt } }`,
    { id },
  );
  return data.testConnection;
}

export type CredentialSource =
  | 'SERVICE_ACCOUNT_KEY'
  | 'AUTHORIZED_USER'
  | 'EXTERNAL_ACCOUNT'
  | 'IMPERSONATED'
  | 'METADATA_SERVER'
  | 'EMULATOR'
  | 'NONE';

export interface BigQuerySetup {
  serviceAccountEmail: string | null;
  credentialSource: CredentialSource;
  requiredPermissions: string[];
  steps: string[];
}

export async function fetchBigQuerySetup(): Promise<BigQuerySetup> {
  const data = await gql<{ bigQuerySetup: BigQuerySetup }>(
    `query Setup { bigQuerySetup { serviceAccountEmail credentialSource requiredPermissions steps } }`,
  );
  return data.bigQuerySetup;
}
